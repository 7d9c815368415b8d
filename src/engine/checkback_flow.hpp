#pragma once
/// Check-backs as a kind of durable process (docs/workflows.md, "Check-backs"): a pending
/// transfer whose check time is a host timer; at it, the client's own post or void is looked
/// for first, then the URL is asked through the CheckBackClient (answers come back through a
/// gate closed at stop), and the answer posts, voids, or waits for the next check; after the
/// last one the case is voided and parked until an operator resolves it. Every rule is in
/// src/domain/checkback.cpp.
///
/// A case does one thing at a time (a step, a transfer or a check in flight makes it busy);
/// callers are answered when it reaches what they wait for.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "domain/checkback.hpp"
#include "engine/workflows.hpp"

namespace pointex::engine {

class CheckBackFlow final : public Flow {
 public:
  explicit CheckBackFlow(Workflows& host);
  ~CheckBackFlow() override;

  domain::ProcessKind kind() const override { return domain::ProcessKind::check_back; }
  const char* name() const override { return "check-back"; }
  [[nodiscard]] bool fold(const domain::ProcessRecord& record) override;
  void resume(std::uint64_t id) override;
  void wake(std::uint64_t id, std::uint64_t due_ns) override;
  void step_failed(std::uint64_t id, bool abandoned, const Status& status) override;
  bool may_leave(std::uint64_t id) const override;
  void forget(std::uint64_t id) override;
  void stop(const Status& status) override;

  // The facade's calls (any thread): they post to the flows thread.
  void create(const CheckedTransfer& request, ResultCallback<CheckBackOutcome> callback);
  void lookup(TransferId id, ResultCallback<std::optional<CheckBackInfo>> callback);
  void parked(ResultCallback<std::vector<CheckBackInfo>> callback);
  void resolve(TransferId id, const std::string& note, ResultCallback<CheckBackOutcome> callback);

 private:
  using Key = Workflows::Key;
  struct Waiter {
    /// create: answered once made (or finished); resolve: once the resolved step is durable.
    enum class Kind : std::uint8_t { create, resolve };
    Kind kind = Kind::create;
    CheckBackResult result = CheckBackResult::ok;
    ResultCallback<CheckBackOutcome> callback;
  };
  struct Entry {
    domain::CheckState state;
    bool busy = false;
    std::vector<Waiter> waiters;
  };
  /// Where the client's answers enter: closed (null) once the engine stops.
  struct Gate {
    std::mutex mutex;
    CheckBackFlow* flow = nullptr;
    void post(std::function<void(CheckBackFlow&)> task);
  };
  static Key key(TransferId id) { return {domain::ProcessKind::check_back, id}; }

  void start(CheckedTransfer request, ResultCallback<CheckBackOutcome> callback);
  void take_resolve(TransferId id, const std::string& note,
                    ResultCallback<CheckBackOutcome> callback);

  // Steps, on the flows thread.
  using Answered = void (CheckBackFlow::*)(TransferId, const Status&, TransferResult);
  void submit(TransferId id, const Transfer& transfer, Answered then);
  void append(TransferId id, domain::CheckStep step, std::string data, const char* crash_at);
  /// Continues from the durable state (also after a restart).
  void advance(TransferId id);
  void pending_answered(TransferId id, const Status& status, TransferResult result);
  void check(TransferId id);
  void check_answered(TransferId id, CheckAnswer answer, std::string detail);
  void resolution_answered(TransferId id, const Status& status, TransferResult result);
  void stall(TransferId id, const Status& status);
  void settle(TransferId id);
  CheckBackInfo info(TransferId id) const;

  Workflows& host_;
  Engine::Impl& core_;
  std::shared_ptr<Gate> gate_;
  /// Flows thread: every case the host holds in memory (parked ones stay: they are open).
  std::map<TransferId, Entry> cases_;
};

}  // namespace pointex::engine
