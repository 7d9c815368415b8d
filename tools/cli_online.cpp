#include "cli_online.hpp"

#include <fmt/core.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/http_client.hpp"

namespace pointex::cli {

namespace {

using nlohmann::json;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_unreachable = 2;

class Online final : public OnlineCommands {
 public:
  explicit Online(CLI::App& app) {
    app.add_option("--url", url_, "pointexd address (online commands)")
        ->envname("POINTEX_URL")
        ->capture_default_str();
    app.add_option("--key", key_, "API key (online commands)")->envname("POINTEX_KEY");
    add_ledger(app);
    add_account(app);
    add_transfer(app);
    auto* tail = app.add_subcommand("tail", "print the live event stream as JSON lines (SSE)");
    tail->add_option("--after", after_, "start after this position (0: from the beginning)")
        ->capture_default_str();
    tail->add_option("--count", count_, "stop after this many events (0: never)")
        ->capture_default_str();
    commands_.push_back({tail, [this] { return run_tail(); }});
  }

  bool selected() const override {
    for (const auto& c : commands_) {
      if (c.app->parsed()) return true;
    }
    return false;
  }

  int run() override {
    std::string error;
    if (!client::parse_url(url_, &host_, &port_, &error)) {
      fmt::print(stderr, "pointex: --url: {}\n", error);
      return exit_unreachable;
    }
    for (const auto& c : commands_) {
      if (c.app->parsed()) return c.run();
    }
    return exit_unreachable;
  }

 private:
  struct Command {
    CLI::App* app;
    std::function<int()> run;
  };

  void add(CLI::App* sub, std::function<int()> run) { commands_.push_back({sub, std::move(run)}); }

  void add_ledger(CLI::App& app) {
    auto* ledger = app.add_subcommand("ledger", "ledgers: create, list, show");
    ledger->require_subcommand(1);
    auto* create = ledger->add_subcommand("create", "create a ledger (admin key)");
    create->add_option("--id", id_, "ledger id")->required();
    create->add_option("--code", code_, "short name: 1-16 of A-Z, 0-9, _")->required();
    create->add_option("--name", name_, "display name");
    create->add_option("--expiry-days", expiry_days_, "points expire after (0: never)");
    add(create, [this] {
      json body = {{"id", id_}, {"code", code_}, {"name", name_}};
      if (expiry_days_) body["expiry_days"] = *expiry_days_;
      return send("POST", "/v1/ledgers", body.dump());
    });
    add(ledger->add_subcommand("list", "list the ledgers"),
        [this] { return send("GET", "/v1/ledgers"); });
    auto* show = ledger->add_subcommand("show", "show one ledger");
    show->add_option("id", id_, "ledger id")->required();
    add(show, [this] { return send("GET", "/v1/ledgers/" + std::to_string(id_)); });
  }

  void add_account(CLI::App& app) {
    auto* account = app.add_subcommand("account", "accounts: create, show, close, history");
    account->require_subcommand(1);
    auto* create = account->add_subcommand("create", "create an account");
    create->add_option("--id", id_, "account id")->required();
    create->add_option("--ledger", ledger_, "ledger id")->required();
    create->add_option("--kind", kind_, "member, issuer or system")
        ->check(CLI::IsMember({"member", "issuer", "system"}))
        ->capture_default_str();
    create->add_option("--owner", owner_, "owner (free text, at most 256 bytes)");
    create->add_option("--flag", flags_,
                       "debits_must_not_exceed_credits or credits_must_not_exceed_debits "
                       "(repeatable; default: members may not overdraw)");
    create->add_flag("--no-flags", no_flags_, "create without any flag");
    create->add_option("--user-data", user_data_, "a number for the caller's use");
    add(create, [this] {
      json body = {{"id", id_},
                   {"ledger", ledger_},
                   {"kind", kind_},
                   {"owner", owner_},
                   {"user_data", user_data_}};
      if (!flags_.empty() || no_flags_) body["flags"] = flags_;
      return send("POST", "/v1/accounts", body.dump());
    });
    auto* show = account->add_subcommand("show", "show an account and its balances");
    show->add_option("id", id_, "account id")->required();
    show->add_option("--min-position", min_position_, "wait until the read model has it");
    add(show, [this] {
      return send("GET", "/v1/accounts/" + std::to_string(id_) +
                             "?min_position=" + std::to_string(min_position_));
    });
    auto* close = account->add_subcommand("close", "close an empty account");
    close->add_option("id", id_, "account id")->required();
    add(close, [this] { return send("POST", "/v1/accounts/" + std::to_string(id_) + "/close"); });
    auto* history = account->add_subcommand("history", "transfers of an account, newest first");
    history->add_option("id", id_, "account id")->required();
    history->add_option("--limit", limit_, "page size (at most 1000)")->capture_default_str();
    history->add_option("--after", cursor_, "the `next` cursor of the previous page");
    history->add_option("--code", transfer_code_, "only transfers with this code");
    history->add_flag("--balances", balances_, "balances after each transfer instead");
    history->add_option("--min-position", min_position_, "wait until the read model has it");
    add(history, [this] {
      std::string target = "/v1/accounts/" + std::to_string(id_) +
                           (balances_ ? "/balances" : "/transfers") +
                           "?limit=" + std::to_string(limit_);
      if (cursor_ != 0) target += "&after=" + std::to_string(cursor_);
      if (transfer_code_ != 0) target += "&code=" + std::to_string(transfer_code_);
      if (min_position_ != 0) target += "&min_position=" + std::to_string(min_position_);
      return send("GET", target);
    });
  }

  void add_transfer(CLI::App& app) {
    auto* transfer = app.add_subcommand("transfer", "transfers: create, show");
    transfer->require_subcommand(1);
    auto* create = transfer->add_subcommand("create", "make a transfer (issue, spend, give...)");
    create->add_option("--id", id_, "transfer id: the idempotency key, unique per debit account")
        ->required();
    create->add_option("--debit", debit_, "debit account id")->required();
    create->add_option("--credit", credit_, "credit account id");
    create->add_option("--amount", amount_, "points");
    create->add_option("--ledger", ledger_, "ledger id");
    create->add_option("--code", transfer_code_, "why, 1-65535");
    auto* pending = create->add_flag("--pending", pending_, "reserve only (two-phase)");
    auto* post = create->add_flag("--post", post_, "post the pending transfer --pending-id");
    auto* cancel = create->add_flag("--void", void_, "void the pending transfer --pending-id");
    pending->excludes(post)->excludes(cancel);
    post->excludes(cancel);
    create->add_option("--pending-id", pending_id_, "the pending transfer to post or void");
    create->add_option("--timeout", timeout_s_, "pending: void after this many seconds");
    create->add_option("--user-data", user_data_, "a number for the caller's use");
    add(create, [this] {
      json body = {{"id", id_}, {"debit_account", debit_}};
      if (credit_ != 0) body["credit_account"] = credit_;
      if (amount_ != 0) body["amount"] = amount_;
      if (ledger_ != 0) body["ledger"] = ledger_;
      if (transfer_code_ != 0) body["code"] = transfer_code_;
      if (pending_) body["flags"] = {"pending"};
      if (post_) body["flags"] = {"post_pending"};
      if (void_) body["flags"] = {"void_pending"};
      if (pending_id_ != 0) body["pending_id"] = pending_id_;
      if (timeout_s_ != 0) body["timeout_s"] = timeout_s_;
      if (user_data_ != 0) body["user_data"] = user_data_;
      return send("POST", "/v1/transfers", body.dump());
    });
    auto* show = transfer->add_subcommand("show", "show a transfer and its state");
    show->add_option("id", id_, "transfer id")->required();
    show->add_option("--debit-account", debit_, "needed when several debit accounts used the id");
    show->add_option("--min-position", min_position_, "wait until the read model has it");
    add(show, [this] {
      std::string target =
          "/v1/transfers/" + std::to_string(id_) + "?min_position=" + std::to_string(min_position_);
      if (debit_ != 0) target += "&debit_account=" + std::to_string(debit_);
      return send("GET", target);
    });
  }

  client::Headers headers() const {
    if (key_.empty()) return {};
    return {{"Authorization", "Bearer " + key_}};
  }

  /// Sends, prints the answer, and maps it to an exit status.
  int send(const std::string& method, const std::string& target, const std::string& body = {}) {
    client::HttpClient c(host_, port_);
    const client::HttpResult r = c.request(method, target, body, headers());
    if (r.status == 0) {
      fmt::print(stderr, "pointex: {} (is pointexd running at {}?)\n", r.error, url_);
      return exit_unreachable;
    }
    const json j = json::parse(r.body, nullptr, false);
    if (r.status >= 300) {
      if (!j.is_discarded() && j.contains("error")) {
        fmt::print(stderr, "pointex: HTTP {}: {}: {}\n", r.status, j["error"].get<std::string>(),
                   j.value("message", ""));
        if (j.contains("debit_accounts")) {
          fmt::print(stderr, "debit accounts: {}\n", j["debit_accounts"].dump());
        }
      } else {
        fmt::print(stderr, "pointex: HTTP {}: {}\n", r.status, r.body);
      }
      return exit_failed;
    }
    fmt::print("{}\n", j.is_discarded() ? r.body : j.dump(2));
    // A batch answer: any item other than ok / exists is a business failure.
    if (j.is_array()) {
      for (const json& item : j) {
        const std::string result = item.value("result", "");
        if (result != "ok" && result != "exists") return exit_failed;
      }
    }
    return exit_ok;
  }

  int run_tail() {
    client::HttpClient c(host_, port_, std::chrono::seconds(10));
    std::string pending;
    std::uint64_t printed = 0;
    std::string error;
    const int status = c.stream(
        "/v1/events/stream?after=" + std::to_string(after_), headers(),
        [&](std::string_view data) {
          pending.append(data);
          // Frames end with a blank line; print each frame's data line.
          for (auto end = pending.find("\n\n"); end != std::string::npos;
               end = pending.find("\n\n")) {
            const std::string frame = pending.substr(0, end);
            pending.erase(0, end + 2);
            const auto at = frame.find("data: ");
            if (at == std::string::npos) continue;
            fmt::print("{}\n", frame.substr(at + 6, frame.find('\n', at) - at - 6));
            std::fflush(stdout);
            if (count_ != 0 && ++printed == count_) return false;
          }
          return true;
        },
        std::chrono::hours(24 * 365), &error);
    if (status == 0) {
      fmt::print(stderr, "pointex: {} (is pointexd running at {}?)\n", error, url_);
      return exit_unreachable;
    }
    if (status != 200) {
      fmt::print(stderr, "pointex: HTTP {}: {}\n", status, error);
      return exit_failed;
    }
    return exit_ok;
  }

  std::vector<Command> commands_;
  std::string url_ = "http://127.0.0.1:8420";
  std::string key_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::uint64_t id_ = 0;
  std::uint64_t ledger_ = 0;
  std::string code_;
  std::string name_;
  std::optional<std::uint32_t> expiry_days_;
  std::string kind_ = "member";
  std::string owner_;
  std::vector<std::string> flags_;
  bool no_flags_ = false;
  std::uint64_t user_data_ = 0;
  std::uint64_t min_position_ = 0;
  std::uint32_t limit_ = 20;
  std::uint64_t cursor_ = 0;
  std::uint32_t transfer_code_ = 0;
  bool balances_ = false;
  std::uint64_t debit_ = 0;
  std::uint64_t credit_ = 0;
  std::uint64_t amount_ = 0;
  bool pending_ = false;
  bool post_ = false;
  bool void_ = false;
  std::uint64_t pending_id_ = 0;
  std::uint32_t timeout_s_ = 0;
  std::uint64_t after_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace

std::unique_ptr<OnlineCommands> add_online_commands(CLI::App& app) {
  return std::make_unique<Online>(app);
}

}  // namespace pointex::cli
