#include "server/metrics.hpp"

#include <fmt/format.h>

namespace pointex::server {

std::string_view to_string(Endpoint e) {
  switch (e) {
    case Endpoint::healthz:
      return "healthz";
    case Endpoint::metrics:
      return "metrics";
    case Endpoint::ledgers_create:
      return "ledgers_create";
    case Endpoint::ledgers_list:
      return "ledgers_list";
    case Endpoint::ledger_get:
      return "ledger_get";
    case Endpoint::accounts_create:
      return "accounts_create";
    case Endpoint::account_get:
      return "account_get";
    case Endpoint::account_close:
      return "account_close";
    case Endpoint::account_transfers:
      return "account_transfers";
    case Endpoint::account_balances:
      return "account_balances";
    case Endpoint::transfers_create:
      return "transfers_create";
    case Endpoint::transfer_get:
      return "transfer_get";
    case Endpoint::events:
      return "events";
    case Endpoint::events_stream:
      return "events_stream";
    case Endpoint::rates_list:
      return "rates_list";
    case Endpoint::rate_get:
      return "rate_get";
    case Endpoint::rate_put:
      return "rate_put";
    case Endpoint::exchanges_create:
      return "exchanges_create";
    case Endpoint::exchange_get:
      return "exchange_get";
    case Endpoint::subscriptions_create:
      return "subscriptions_create";
    case Endpoint::subscriptions_list:
      return "subscriptions_list";
    case Endpoint::subscription_get:
      return "subscription_get";
    case Endpoint::subscription_delete:
      return "subscription_delete";
    case Endpoint::dead_letters_list:
      return "dead_letters_list";
    case Endpoint::dead_letter_retry:
      return "dead_letter_retry";
    case Endpoint::orders_create:
      return "orders_create";
    case Endpoint::order_get:
      return "order_get";
    case Endpoint::order_cancel:
      return "order_cancel";
    case Endpoint::payment_callback:
      return "payment_callback";
    case Endpoint::rules_get:
      return "rules_get";
    case Endpoint::rules_put:
      return "rules_put";
    case Endpoint::purchases_create:
      return "purchases_create";
    case Endpoint::purchase_get:
      return "purchase_get";
    case Endpoint::purchase_refund:
      return "purchase_refund";
    case Endpoint::check_backs_create:
      return "check_backs_create";
    case Endpoint::check_backs_list:
      return "check_backs_list";
    case Endpoint::check_back_get:
      return "check_back_get";
    case Endpoint::check_back_resolve:
      return "check_back_resolve";
    case Endpoint::unrouted:
      return "unrouted";
    case Endpoint::count:
      break;
  }
  return "unknown";
}

namespace {

std::size_t status_index(int status) {
  for (std::size_t i = 0; i + 1 < Metrics::statuses.size(); ++i) {
    if (Metrics::statuses[i] == status) return i;
  }
  return Metrics::statuses.size() - 1;
}

int batch_slot(Endpoint e) {
  return e == Endpoint::transfers_create ? 0 : 1;
}

}  // namespace

void Metrics::request(Endpoint endpoint, int status, std::uint64_t latency_ns) {
  const auto e = static_cast<std::size_t>(endpoint);
  requests_[e][status_index(status)].fetch_add(1, std::memory_order_relaxed);
  const double s = static_cast<double>(latency_ns) / 1e9;
  std::size_t b = 0;
  while (b < latency_buckets_s.size() && s > latency_buckets_s[b]) ++b;
  latency_[e][b].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns_[e].fetch_add(latency_ns, std::memory_order_relaxed);
}

void Metrics::transfers(const std::vector<TransferOutcome>& outcomes) {
  for (const TransferOutcome& o : outcomes) {
    const auto r = static_cast<std::size_t>(o.result);
    if (r < transfer_results_.size()) transfer_results_[r].fetch_add(1, std::memory_order_relaxed);
  }
}

void Metrics::batch(Endpoint endpoint, std::size_t items) {
  const int slot = batch_slot(endpoint);
  std::size_t b = 0;
  while (b < batch_buckets.size() && items > batch_buckets[b]) ++b;
  batch_[slot][b].fetch_add(1, std::memory_order_relaxed);
  batch_sum_[slot].fetch_add(items, std::memory_order_relaxed);
}

void Metrics::payment_callback(PaymentResultOutcome outcome) {
  const auto i = static_cast<std::size_t>(outcome);
  if (i + 1 < payment_callbacks_.size()) {
    payment_callbacks_[i].fetch_add(1, std::memory_order_relaxed);
  }
}

void Metrics::payment_callback_refused() {
  payment_callbacks_.back().fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::render(const EngineStats* stats) const {
  fmt::memory_buffer out;
  auto line = [&](auto&&... args) { fmt::format_to(std::back_inserter(out), args...); };
  line("# HELP pointex_http_requests_total HTTP requests by endpoint and status.\n");
  line("# TYPE pointex_http_requests_total counter\n");
  for (std::size_t e = 0; e < endpoints; ++e) {
    for (std::size_t s = 0; s < statuses.size(); ++s) {
      const std::uint64_t n = requests_[e][s].load(std::memory_order_relaxed);
      if (n == 0) continue;
      const std::string status = statuses[s] == 0 ? "other" : std::to_string(statuses[s]);
      line("pointex_http_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n",
           to_string(static_cast<Endpoint>(e)), status, n);
    }
  }
  line(
      "# HELP pointex_http_request_seconds Request latency, from the end of its header to its "
      "answer.\n");
  line("# TYPE pointex_http_request_seconds histogram\n");
  for (std::size_t e = 0; e < endpoints; ++e) {
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= latency_buckets_s.size(); ++b) cumulative += latency_[e][b];
    if (cumulative == 0) continue;
    const auto name = to_string(static_cast<Endpoint>(e));
    cumulative = 0;
    for (std::size_t b = 0; b <= latency_buckets_s.size(); ++b) {
      cumulative += latency_[e][b].load(std::memory_order_relaxed);
      const std::string le =
          b < latency_buckets_s.size() ? fmt::format("{}", latency_buckets_s[b]) : "+Inf";
      line("pointex_http_request_seconds_bucket{{endpoint=\"{}\",le=\"{}\"}} {}\n", name, le,
           cumulative);
    }
    line("pointex_http_request_seconds_sum{{endpoint=\"{}\"}} {}\n", name,
         static_cast<double>(latency_sum_ns_[e].load()) / 1e9);
    line("pointex_http_request_seconds_count{{endpoint=\"{}\"}} {}\n", name, cumulative);
  }
  line("# HELP pointex_transfers_total Transfer items answered, by result.\n");
  line("# TYPE pointex_transfers_total counter\n");
  for (std::size_t r = 0; r < transfer_results_.size(); ++r) {
    const std::uint64_t n = transfer_results_[r].load(std::memory_order_relaxed);
    if (n == 0) continue;
    line("pointex_transfers_total{{result=\"{}\"}} {}\n", to_string(static_cast<TransferResult>(r)),
         n);
  }
  line("# HELP pointex_batch_items Items per write request (transfers, accounts).\n");
  line("# TYPE pointex_batch_items histogram\n");
  for (int slot = 0; slot < 2; ++slot) {
    const char* kind = slot == 0 ? "transfers" : "accounts";
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= batch_buckets.size(); ++b) {
      cumulative += batch_[slot][b].load(std::memory_order_relaxed);
      const std::string le = b < batch_buckets.size() ? std::to_string(batch_buckets[b]) : "+Inf";
      line("pointex_batch_items_bucket{{kind=\"{}\",le=\"{}\"}} {}\n", kind, le, cumulative);
    }
    line("pointex_batch_items_sum{{kind=\"{}\"}} {}\n", kind, batch_sum_[slot].load());
    line("pointex_batch_items_count{{kind=\"{}\"}} {}\n", kind, cumulative);
  }
  auto gauge = [&](const char* name, const char* help, auto value) {
    line("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, value);
  };
  line(
      "# HELP pointex_payment_callbacks_total Payment callbacks, by what they did "
      "(bad_signature: refused, nothing recorded).\n"
      "# TYPE pointex_payment_callbacks_total counter\n");
  for (std::size_t i = 0; i < payment_callbacks_.size(); ++i) {
    const std::string_view result = i + 1 < payment_callbacks_.size()
                                        ? to_string(static_cast<PaymentResultOutcome>(i))
                                        : std::string_view("bad_signature");
    line("pointex_payment_callbacks_total{{result=\"{}\"}} {}\n", result,
         payment_callbacks_[i].load(std::memory_order_relaxed));
  }
  gauge("pointex_http_inflight_requests", "Requests being processed.", inflight_requests.load());
  gauge("pointex_http_connections", "Open HTTP connections.", connections.load());
  gauge("pointex_event_streams", "Open SSE event streams.", streams.load());
  line(
      "# HELP pointex_http_connections_refused_total Connections closed at once: over "
      "connections_max.\n# TYPE pointex_http_connections_refused_total counter\n"
      "pointex_http_connections_refused_total {}\n",
      connections_refused.load());
  gauge("pointex_ready", "1 once the engine is open (recovery complete).", stats ? 1 : 0);
  if (stats != nullptr) {
    gauge("pointex_committed_position", "Highest position committed to the event log.",
          stats->committed_position);
    gauge("pointex_projected_position", "Position the read models include.",
          stats->projected_position);
    gauge("pointex_async_reads",
          "Engine reads queued or waiting for their min_position (the engine's read queue).",
          stats->async_reads);
    gauge(
        "pointex_projection_lag_events", "committed_position - projected_position.",
        stats->committed_position - std::min(stats->committed_position, stats->projected_position));
    gauge("pointex_engine_inflight_transfers", "Transfers accepted by the engine, not answered.",
          stats->inflight_transfers);
    gauge("pointex_live_account_actors", "Account actors running.", stats->live_account_actors);
    gauge("pointex_accounts_in_memory",
          "Accounts whose state is in memory (the rest load from the read models on use).",
          stats->accounts_in_memory);
    gauge("pointex_accounts_passivated", "Accounts that left memory since the engine opened.",
          stats->accounts_passivated);
    gauge("pointex_transfer_records_loaded",
          "Transfer records looked up in the read models (not in memory).",
          stats->transfer_records_loaded);
    gauge("pointex_account_records_cap",
          "Transfer records each account keeps in memory now (the records budget shared out).",
          stats->account_records_cap);
    gauge("pointex_event_log_failed", "1 once an event log write failed (the engine stopped).",
          stats->log_failed ? 1 : 0);
    gauge("pointex_read_models_failed", "1 once a read-model write failed (projection stopped).",
          stats->read_models_failed ? 1 : 0);
    gauge("pointex_ledgers", "Ledgers.", stats->ledgers);
    gauge("pointex_accounts", "Accounts.", stats->accounts);
    line(
        "# HELP pointex_commit_groups_total Group commits (one write + sync each).\n"
        "# TYPE pointex_commit_groups_total counter\npointex_commit_groups_total {}\n",
        stats->commit_groups);
    line(
        "# HELP pointex_committed_events_total Events committed.\n"
        "# TYPE pointex_committed_events_total counter\npointex_committed_events_total {}\n",
        stats->committed_events);
    line(
        "# HELP pointex_direct_credits_total Credits committed by the debit account's actor "
        "(no message to the credit account's actor).\n"
        "# TYPE pointex_direct_credits_total counter\npointex_direct_credits_total {}\n",
        stats->direct_credits);
    gauge("pointex_open_processes", "Exchanges and orders started and not completed.",
          stats->open_processes);
    line(
        "# HELP pointex_payment_results_unknown_total Payment results naming no payment "
        "(since the engine opened).\n# TYPE pointex_payment_results_unknown_total counter\n"
        "pointex_payment_results_unknown_total {}\n",
        stats->payment_results_unknown);
    line(
        "# HELP pointex_payment_results_late_total Payment results after their order was "
        "decided otherwise (recorded; a late success needs a refund).\n"
        "# TYPE pointex_payment_results_late_total counter\n"
        "pointex_payment_results_late_total {}\n",
        stats->payment_results_late);
    gauge("pointex_recovery_seconds", "Time the last open took to recover.",
          static_cast<double>(stats->recovery_ms) / 1000.0);
  }
  return fmt::to_string(out);
}

}  // namespace pointex::server
