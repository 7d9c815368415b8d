#pragma once
// Builders of commands shared by the domain and engine tests (public types only).

#include <cstdint>
#include <pointex/types.hpp>

namespace pointex::test {

/// A single transfer (code 1 unless given: what most tests submit).
inline Transfer single_transfer(TransferId id, AccountId debit, AccountId credit,
                                std::uint64_t amount, LedgerId ledger, std::uint16_t code = 1) {
  Transfer t;
  t.id = id;
  t.debit_account = debit;
  t.credit_account = credit;
  t.amount = amount;
  t.ledger = ledger;
  t.code = code;
  return t;
}

}  // namespace pointex::test
