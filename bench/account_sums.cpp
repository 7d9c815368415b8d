#include "account_sums.hpp"

#include <algorithm>

namespace pointex::bench {

Sums sums_of(Engine& engine, const std::vector<AccountId>& ids) {
  Sums s;
  const std::size_t batch = engine.options().batch_items_max;
  for (std::size_t i = 0; i < ids.size(); i += batch) {
    const std::vector<AccountId> part(
        ids.begin() + static_cast<std::ptrdiff_t>(i),
        ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), i + batch)));
    std::vector<std::optional<Account>> accounts;
    if (!engine.lookup_accounts(part, &accounts).is_ok()) {
      s.all_found = false;
      return s;
    }
    for (const auto& a : accounts) {
      if (!a) {
        s.all_found = false;
        continue;
      }
      s.balance += a->balance();
      s.pending += a->debits_pending + a->credits_pending;
    }
  }
  return s;
}

}  // namespace pointex::bench
