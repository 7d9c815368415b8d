// The process the order crash test kills: it opens an engine on a prepared data dir (member
// 2001 and merchant 1500 on ledger 1, a simulated provider "sim" that reports nothing) and
// runs one order, then what ACTION says. With POINTEX_TEST_CRASH_AT=order:<step> in its
// environment the engine SIGKILLs the process right after that step of the order is durable
// (docs/workflows.md); without it, it prints the order's status and exits 0.
//
// usage: pointex-order-crash-child DATA_DIR ID POINTS CASH TIMEOUT_S ACTION
//   ACTION: none | succeed | fail | cancel | late (cancel, then a success) | expire (wait)

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <pointex/engine.hpp>
#include <string>
#include <thread>

using namespace pointex;

namespace {

int fail(const char* what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what, s.to_string().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s DATA_DIR ID POINTS CASH TIMEOUT_S ACTION\n", argv[0]);
    return 2;
  }
  SimulatedProviderOptions sim;
  sim.name = "sim";
  sim.report_results = false;
  EngineOptions options;
  options.data_dir = argv[1];
  options.payment_providers = {make_simulated_provider(sim)};
  std::unique_ptr<Engine> engine;
  Status s = Engine::open(options, &engine);
  if (!s.is_ok()) return fail("open", s);
  Order order;
  order.id = std::strtoull(argv[2], nullptr, 10);
  order.member_account = 2001;
  order.merchant_account = 1500;
  order.points = std::strtoull(argv[3], nullptr, 10);
  order.cash.amount = std::strtoull(argv[4], nullptr, 10);
  order.cash.currency = order.cash.amount != 0 ? "EUR" : "";
  order.timeout_s = static_cast<std::uint32_t>(std::strtoul(argv[5], nullptr, 10));
  const std::string action = argv[6];
  OrderOutcome o;
  s = engine->create_order(order, &o);
  if (!s.is_ok()) return fail("create_order", s);
  PaymentResultAnswer answer;
  if (action == "succeed" || action == "fail") {
    s = engine->payment_result(
        "sim", o.order->payment_id,
        action == "succeed" ? PaymentStatus::succeeded : PaymentStatus::failed, &answer);
  } else if (action == "cancel" || action == "late") {
    s = engine->cancel_order(order.id, &o);
    if (s.is_ok() && action == "late") {
      s = engine->payment_result("sim", o.order->payment_id, PaymentStatus::succeeded, &answer);
    }
  }
  if (!s.is_ok()) return fail(action.c_str(), s);
  // A result is answered once decided: wait for the points to be posted or voided (and for
  // the deadline of `expire`).
  std::optional<OrderInfo> info;
  for (int i = 0; i < 1000; ++i) {
    s = engine->lookup_order(order.id, &info);
    if (!s.is_ok()) return fail("lookup_order", s);
    if (info->step == OrderStep::completed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("%s\n", std::string(to_string(info->status)).c_str());
  return 0;
}
