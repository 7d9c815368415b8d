// pointex: the command line tool.
// Online, talking to a running pointexd (--url / POINTEX_URL, --key / POINTEX_KEY):
//   pointex ledger create|list|show, account create|show|close|history, transfer create|show,
//   pointex tail   (the live event stream)           see tools/cli_online.cpp
// Offline admin tasks on a data dir that no engine has open:
//   pointex verify  --data-dir DIR            audit: exit 0 consistent, 1 problems found
//   pointex rebuild --data-dir DIR            drop and rebuild the read models from the log
//   pointex events  --data-dir DIR [--after N] [--limit M]   print events as JSON lines
// Exit status: 0 ok, 1 verify found problems / the daemon refused a request / an item failed,
// 2 the task could not run (bad usage, daemon unreachable, I/O, corrupt data); the reason goes
// to stderr. Progress of long tasks goes to stderr (logs).

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <pointex/engine.hpp>

#include "cli_online.hpp"
#include "domain/codec.hpp"
#include "store/event_log.hpp"

using namespace pointex;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_problems = 1;
constexpr int exit_error = 2;
constexpr std::uint64_t events_limit_max = 1'000'000;

int fail(const std::string& what, const Status& s) {
  fmt::print(stderr, "pointex {}: {}\n", what, s.to_string());
  return exit_error;
}

nlohmann::json to_json(std::uint64_t position, const domain::Event& event) {
  nlohmann::json j = {{"position", position}, {"timestamp", domain::event_timestamp(event)}};
  if (const auto* l = std::get_if<domain::LedgerCreated>(&event)) {
    j["type"] = "ledger_created";
    j["ledger"] = {{"id", l->ledger.id},
                   {"code", l->ledger.code},
                   {"name", l->ledger.name},
                   {"expiry_days", l->ledger.expiry_days}};
  } else if (const auto* a = std::get_if<domain::AccountCreated>(&event)) {
    j["type"] = "account_created";
    j["account"] = {{"id", a->spec.id},
                    {"ledger", a->spec.ledger},
                    {"kind", to_string(a->spec.kind)},
                    {"flags", a->spec.flags},
                    {"user_data", a->spec.user_data},
                    {"owner", a->spec.owner}};
  } else if (const auto* c = std::get_if<domain::AccountClosed>(&event)) {
    j["type"] = "account_closed";
    j["account"] = {{"id", c->id}};
  } else if (const auto* r = std::get_if<domain::RulesSet>(&event)) {
    j["type"] = "rules_set";
    j["rules"] = {{"ledger", r->rules.ledger},
                  {"issuer_account", r->rules.issuer_account},
                  {"currency", r->rules.currency},
                  {"categories", r->rules.categories.size()},
                  {"campaigns", r->rules.campaigns.size()},
                  {"return_window_s", r->rules.return_window_s}};
  } else if (const auto* r = std::get_if<domain::RateSet>(&event)) {
    j["type"] = "rate_set";
    j["rate"] = {{"from_ledger", r->rate.from_ledger},
                 {"to_ledger", r->rate.to_ledger},
                 {"numerator", r->rate.numerator},
                 {"denominator", r->rate.denominator},
                 {"fee_bps", r->rate.fee_bps},
                 {"member_daily_cap", r->rate.member_daily_cap},
                 {"pair_daily_cap", r->rate.pair_daily_cap},
                 {"from_exchange_account", r->rate.from_exchange_account},
                 {"to_exchange_account", r->rate.to_exchange_account}};
  } else if (const auto* p = std::get_if<domain::ProcessStepped>(&event)) {
    j["type"] = "process_stepped";
    j["process"] = {{"kind", static_cast<int>(p->kind)}, {"id", p->id}, {"step", p->step}};
  } else if (const auto* w = std::get_if<domain::WebhookCreated>(&event)) {
    j["type"] = "webhook_created";  // the secret stays out of the dump
    j["webhook"] = {{"id", position},
                    {"url", w->spec.url},
                    {"events", w->spec.events},
                    {"ledgers", w->spec.ledgers}};
  } else if (const auto* d = std::get_if<domain::WebhookDeleted>(&event)) {
    j["type"] = "webhook_deleted";
    j["webhook"] = {{"id", d->id}};
  } else if (const auto* g = std::get_if<domain::WebhookProgressed>(&event)) {
    j["type"] = "webhook_progressed";
    nlohmann::json dead = nlohmann::json::array();
    for (const DeadLetter& x : g->progress.dead_lettered) dead.push_back(x.position);
    j["webhook"] = {{"id", g->progress.id},
                    {"cursor", g->progress.cursor},
                    {"dead_lettered", dead},
                    {"redelivered", g->progress.redelivered}};
  } else {
    const auto& t = std::get<domain::TransferEvent>(event);
    j["type"] = "transfer";
    j["kind"] = to_string(t.kind);
    j["transfer"] = {{"id", t.request.id},
                     {"debit_account", t.debit_account},
                     {"credit_account", t.credit_account},
                     {"amount", t.amount},
                     {"ledger", t.ledger},
                     {"code", t.code},
                     {"flags", t.request.flags},
                     {"pending_id", t.request.pending_id},
                     {"user_data", t.request.user_data},
                     {"expires_at", t.expires_at}};
  }
  return j;
}

int verify(const std::string& dir) {
  VerifyReport report;
  const Status s = Engine::verify(dir, &report);
  if (!s.is_ok()) return fail("verify", s);
  fmt::print("{} events, {} ledgers, {} accounts, {} open pending transfers\n", report.events,
             report.ledgers, report.accounts, report.open_pending_transfers);
  for (const std::string& p : report.problems) fmt::print("problem: {}\n", p);
  fmt::print("{}\n", report.ok ? "ok" : "PROBLEMS FOUND");
  return report.ok ? exit_ok : exit_problems;
}

int events(const std::string& dir, std::uint64_t after, std::uint64_t limit) {
  std::unique_ptr<store::EventLog> log;
  Status s = store::EventLog::open(dir, &log);
  if (!s.is_ok()) return fail("events", s);
  Status failure;
  std::uint64_t printed = 0;
  s = log->scan(after + 1, [&](std::uint64_t position, std::string_view bytes) {
    if (printed == limit) return false;
    domain::Event event;
    const domain::DecodeError err = domain::decode_event(bytes, &event);
    if (err != domain::DecodeError::none) {
      failure = Status::corruption("event at position " + std::to_string(position) + ": " +
                                   std::string(domain::to_string(err)));
      return false;
    }
    fmt::print("{}\n", to_json(position, event).dump());
    ++printed;
    return true;
  });
  if (s.is_ok()) s = failure;
  return s.is_ok() ? exit_ok : fail("events", s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pointex: PointEx command line. Online commands talk to a running pointexd (--url, "
      "--key or POINTEX_URL, POINTEX_KEY); verify, rebuild and events work offline on a data "
      "dir.\nExit status: 0 ok, 1 refused or failed (HTTP error, an item not ok, verify found "
      "problems), 2 could not run (usage, daemon unreachable, I/O)."};
  app.require_subcommand(1);
  app.fallthrough();
  std::unique_ptr<cli::OnlineCommands> online = cli::add_online_commands(app);
  std::string dir;
  auto* verify_cmd = app.add_subcommand(
      "verify", "audit a data dir: conservation, pending amounts, read models vs the log");
  verify_cmd->add_option("--data-dir", dir, "data directory (not open by an engine)")
      ->required()
      ->check(CLI::ExistingDirectory);
  auto* rebuild_cmd =
      app.add_subcommand("rebuild", "drop the read models and rebuild them from the event log");
  rebuild_cmd->add_option("--data-dir", dir, "data directory (not open by an engine)")
      ->required()
      ->check(CLI::ExistingDirectory);
  std::uint64_t after = 0;
  std::uint64_t limit = 100;
  auto* events_cmd = app.add_subcommand("events", "print events of the log as JSON lines");
  events_cmd->add_option("--data-dir", dir, "data directory (not open by an engine)")
      ->required()
      ->check(CLI::ExistingDirectory);
  events_cmd->add_option("--after", after, "print events after this position")
      ->capture_default_str();
  events_cmd->add_option("--limit", limit, "print at most this many events")
      ->check(CLI::Range(std::uint64_t{1}, events_limit_max))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? exit_ok : exit_error;
  }
  if (online->selected()) return online->run();
  if (*verify_cmd) return verify(dir);
  if (*rebuild_cmd) {
    const Status s = Engine::rebuild_read_models(dir);
    if (!s.is_ok()) return fail("rebuild", s);
    fmt::print("read models rebuilt\n");
    return exit_ok;
  }
  return events(dir, after, limit);
}
