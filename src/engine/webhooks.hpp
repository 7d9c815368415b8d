#pragma once
/// The engine's webhook subscriptions (docs/webhooks.md): the fold of their events in memory
/// (loaded from the read models at open, then the log's tail), and the commands that append
/// their events. Delivery is the host's (pointexd: src/server/webhooks.*).

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "domain/webhook.hpp"
#include "pointex/engine.hpp"
#include "store/read_model.hpp"

namespace pointex::engine {

class Webhooks {
 public:
  explicit Webhooks(Engine::Impl& core) : core_(core) {}

  /// At open: the subscriptions at the read models' checkpoint.
  [[nodiscard]] Status load(const store::ReadModel& read_model);
  /// At open: an event of the log's tail, in position order.
  void recover(std::uint64_t position, const domain::Event& event);

  void create(const WebhookSpec& spec, ResultCallback<WebhookOutcome> callback);
  void remove(WebhookId id, ResultCallback<WebhookOutcome> callback);
  void record(const WebhookProgress& progress, ResultCallback<WebhookOutcome> callback);

  std::vector<Webhook> list() const;
  std::optional<Webhook> get(WebhookId id) const;
  bool dead_letters(WebhookId id, std::uint64_t after, std::uint32_t limit,
                    DeadLetterPage* page) const;

 private:
  /// Refuses at once when the engine stopped or its log failed (true: answered).
  bool refused(const ResultCallback<WebhookOutcome>& callback) const;
  /// Appends `event` and applies it to the table (under mutex_, so the table follows the
  /// log's order); `callback` gets `outcome` once durable (the id of a creation filled in).
  void append(domain::Event event, WebhookOutcome outcome, ResultCallback<WebhookOutcome> callback);

  Engine::Impl& core_;
  mutable std::mutex mutex_;
  domain::WebhookTable table_;
};

}  // namespace pointex::engine
