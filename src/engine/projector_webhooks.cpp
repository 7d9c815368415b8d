// The projector's part of the webhook subscriptions (docs/webhooks.md): one record per
// subscription, its definition, cursor and dead letters, folded by domain/webhook.

#include "engine/projector.hpp"

namespace pointex::engine {

Status Projector::apply_webhook(std::uint64_t position, const domain::Event& e) {
  if (!webhooks_loaded_) {
    // Nothing of them is unflushed yet: the read models hold them all.
    const Status s = read_model_.webhooks(&webhooks_);
    if (!s.is_ok()) return s;
    webhooks_loaded_ = true;
  }
  domain::apply_webhook_event(webhooks_, position, e);
  WebhookId id = position;
  if (const auto* d = std::get_if<domain::WebhookDeleted>(&e)) id = d->id;
  if (const auto* p = std::get_if<domain::WebhookProgressed>(&e)) id = p->progress.id;
  const auto it = webhooks_.find(id);
  if (it == webhooks_.end()) {
    writer_->delete_webhook(id);
  } else {
    writer_->put_webhook(it->second);
  }
  return Status::ok();
}

}  // namespace pointex::engine
