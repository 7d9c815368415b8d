#include "store/read_model.hpp"

#include <rocksdb/write_batch.h>

#include <algorithm>

#include "domain/assert.hpp"
#include "domain/lots.hpp"
#include "domain/rebate.hpp"
#include "domain/varint.hpp"
#include "store/db.hpp"
#include "store/key_sort.hpp"

namespace pointex::store {
namespace {

using domain::put_bytes;
using domain::put_transfer_request;
using domain::put_u8;
using domain::put_varint;
using domain::read_transfer_request;
using domain::Reader;

constexpr const char* checkpoint_key = "checkpoint";
constexpr const char* account_count_key = "accounts";

std::string key1(std::uint64_t a) {
  std::string k;
  put_be64(k, a);
  return k;
}
std::string key2(std::uint64_t a, std::uint64_t b) {
  std::string k;
  put_be64(k, a);
  put_be64(k, b);
  return k;
}

/// A key of two big-endian u64s, as numbers (the writer sorts these).
struct KeyParts {
  std::uint64_t hi;
  std::uint64_t lo;
};

/// Transfers are keyed by id first: a lookup by id alone is a scan of one prefix, and a
/// lookup by (debit account, id) a point read.
KeyParts transfer_key_parts(AccountId debit, TransferId id) {
  return {id, debit};
}
std::string transfer_key(AccountId debit, TransferId id) {
  const KeyParts k = transfer_key_parts(debit, id);
  return key2(k.hi, k.lo);
}

/// Positions are stored inverted so that newest first is a forward scan within the account's
/// prefix.
KeyParts history_key_parts(AccountId account, std::uint64_t position) {
  return {account, UINT64_MAX - position};
}
/// Entries per history row at most: a hot account (every transfer of a campaign) would else
/// make one row of a whole write, read entirely for a page of ten.
constexpr std::size_t history_group_max = 128;

std::string history_key(AccountId account, std::uint64_t position) {
  const KeyParts k = history_key_parts(account, position);
  return key2(k.hi, k.lo);
}

void put_balances(std::string& out, const Balances& b) {
  put_varint(out, b.debits_posted);
  put_varint(out, b.credits_posted);
  put_varint(out, b.debits_pending);
  put_varint(out, b.credits_pending);
}
Balances read_balances(Reader& in) {
  Balances b;
  b.debits_posted = in.varint();
  b.credits_posted = in.varint();
  b.debits_pending = in.varint();
  b.credits_pending = in.varint();
  return b;
}

void encode_account(std::string& v, const Account& a, std::uint64_t last_position,
                    std::uint64_t debit_transfers) {
  put_varint(v, a.spec.id);
  put_varint(v, a.spec.ledger);
  put_u8(v, static_cast<std::uint8_t>(a.spec.kind));
  put_varint(v, a.spec.flags);
  put_varint(v, a.spec.user_data);
  put_bytes(v, a.spec.owner);
  put_balances(v, {a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending});
  put_varint(v, a.timestamp);
  put_varint(v, last_position);
  put_varint(v, debit_transfers);
  put_varint(v, a.expiring.size());
  for (const ExpiringLot& lot : a.expiring) {
    put_varint(v, lot.amount);
    put_varint(v, lot.at);
  }
}
Status decode_account(const std::string& v, Account* a, std::uint64_t* last_position,
                      std::uint64_t* debit_transfers) {
  Reader in(v);
  a->spec.id = in.varint();
  a->spec.ledger = in.varint();
  a->spec.kind = static_cast<AccountKind>(in.bounded<std::uint8_t>(2));
  a->spec.flags = in.bounded<std::uint32_t>(account_flags::all);
  a->spec.user_data = in.varint();
  a->spec.owner = in.bytes(owner_bytes_max);
  const Balances b = read_balances(in);
  a->debits_posted = b.debits_posted;
  a->credits_posted = b.credits_posted;
  a->debits_pending = b.debits_pending;
  a->credits_pending = b.credits_pending;
  a->timestamp = in.varint();
  const std::uint64_t last = in.varint();
  const std::uint64_t debits = in.varint();
  const auto lots = in.bounded<std::uint64_t>(domain::lots_decoded_max);
  a->expiring.clear();
  for (std::uint64_t i = 0; i < lots && in.error() == domain::DecodeError::none; ++i) {
    ExpiringLot lot;
    lot.amount = in.varint();
    lot.at = in.varint();
    a->expiring.push_back(lot);
  }
  if (last_position != nullptr) *last_position = last;
  if (debit_transfers != nullptr) *debit_transfers = debits;
  if (in.finish() != domain::DecodeError::none) return Status::corruption("bad account record");
  if (!domain::lots_valid(a->expiring)) return Status::corruption("bad account lots");
  return Status::ok();
}

void encode_transfer(std::string& v, const TransferInfo& t) {
  put_transfer_request(v, t.request);
  for (std::uint64_t x :
       {t.debit_account, t.credit_account, t.ledger, std::uint64_t{t.code}, t.amount}) {
    put_varint(v, x);
  }
  put_u8(v, static_cast<std::uint8_t>(t.state));
  put_varint(v, t.expires_at);
  put_varint(v, t.timestamp);
  put_varint(v, t.position);
}
Status decode_transfer(const std::string& v, TransferInfo* t) {
  Reader in(v);
  t->request = read_transfer_request(in);
  t->debit_account = in.varint();
  t->credit_account = in.varint();
  t->ledger = in.varint();
  t->code = in.bounded<std::uint16_t>(UINT16_MAX);
  t->amount = in.varint();
  t->state = static_cast<TransferState>(in.bounded<std::uint8_t>(3));
  t->expires_at = in.varint();
  t->timestamp = in.varint();
  t->position = in.varint();
  if (in.finish() != domain::DecodeError::none) return Status::corruption("bad transfer record");
  return Status::ok();
}

/// One history entry as it sits in a group (below): its position first.
void encode_history(std::string& v, const HistoryEntry& e) {
  put_varint(v, e.position);
  put_varint(v, e.timestamp);
  put_varint(v, e.debit_account);
  put_varint(v, e.transfer_id);
  put_u8(v, static_cast<std::uint8_t>(e.kind));
  put_varint(v, e.code);
  put_varint(v, e.amount);
  put_balances(v, e.after);
}

/// Calls `fn` with each entry of one history group, newest first, until it answers false.
/// A group is what one read-model write holds of one account's history (at most
/// history_group_max entries), keyed by its oldest position (see Writer::Impl::Family).
template <class Fn>
Status for_each_history(const rocksdb::Slice& key, const rocksdb::Slice& v, Fn&& fn) {
  if (key.size() != 16) return Status::corruption("bad history key");
  const std::uint64_t oldest = UINT64_MAX - get_be64(key.data() + 8);
  Reader in(std::string_view(v.data(), v.size()));
  std::uint64_t previous = UINT64_MAX;
  while (!in.at_end()) {
    HistoryEntry e;
    e.position = in.varint();
    e.timestamp = in.varint();
    e.debit_account = in.varint();
    e.transfer_id = in.varint();
    e.kind = static_cast<domain::TransferKind>(in.bounded<std::uint8_t>(4));
    e.code = in.bounded<std::uint16_t>(UINT16_MAX);
    e.amount = in.varint();
    e.after = read_balances(in);
    if (in.error() != domain::DecodeError::none || e.position >= previous || e.position < oldest) {
      return Status::corruption("bad history group");
    }
    previous = e.position;
    if (!fn(e)) return Status::ok();
  }
  if (previous != oldest) return Status::corruption("bad history group");
  return Status::ok();
}

std::string encode_stats(const DayStats& s) {
  std::string v;
  put_varint(v, s.issued);
  put_varint(v, s.redeemed);
  put_varint(v, s.expired);
  put_varint(v, s.transfers);
  put_varint(v, static_cast<std::uint64_t>(s.outstanding));
  return v;
}
Status decode_stats(const rocksdb::Slice& key, const rocksdb::Slice& v, DayStats* s) {
  Reader in(std::string_view(v.data(), v.size()));
  s->day = static_cast<std::uint32_t>(get_be64(key.data() + 4) & 0xFFFFFFFFULL);
  s->issued = in.varint();
  s->redeemed = in.varint();
  s->expired = in.varint();
  s->transfers = in.varint();
  s->outstanding = static_cast<std::int64_t>(in.varint());
  if (in.finish() != domain::DecodeError::none) return Status::corruption("bad stats record");
  return Status::ok();
}

std::string encode_ledger(const Ledger& l) {
  std::string v;
  put_varint(v, l.id);
  put_bytes(v, l.code);
  put_bytes(v, l.name);
  put_varint(v, l.expiry_days);
  put_varint(v, l.timestamp);
  return v;
}
Status decode_ledger(const rocksdb::Slice& v, Ledger* l) {
  Reader in(std::string_view(v.data(), v.size()));
  l->id = in.varint();
  l->code = in.bytes(ledger_code_bytes_max);
  l->name = in.bytes(ledger_name_bytes_max);
  l->expiry_days = in.bounded<std::uint32_t>(UINT32_MAX);
  l->timestamp = in.varint();
  if (in.finish() != domain::DecodeError::none) return Status::corruption("bad ledger record");
  return Status::ok();
}

std::string stats_key(LedgerId ledger, std::uint32_t day) {
  std::string k;
  put_be64(k, ledger);
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((day >> (8 * i)) & 0xFF));
  return k;
}

std::string rate_key(LedgerId from, LedgerId to) {
  return key2(from, to);
}
std::string process_key(domain::ProcessKind kind, std::uint64_t id) {
  std::string k;
  k.push_back(static_cast<char>(kind));
  put_be64(k, id);
  return k;
}
std::string counter_key(const domain::CounterKey& c) {
  std::string k;
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((c.day >> (8 * i)) & 0xFF));
  k.push_back(static_cast<char>(c.scope));
  put_be64(k, c.a);
  put_be64(k, c.b);
  return k;
}

std::string encode_rate(const Rate& r) {
  std::string v;
  for (std::uint64_t x : {r.from_ledger, r.to_ledger, r.numerator, r.denominator,
                          std::uint64_t{r.fee_bps}, r.member_daily_cap, r.pair_daily_cap,
                          r.from_exchange_account, r.to_exchange_account, r.timestamp}) {
    put_varint(v, x);
  }
  return v;
}
Status decode_rate(const rocksdb::Slice& v, Rate* r) {
  Reader in(std::string_view(v.data(), v.size()));
  r->from_ledger = in.varint();
  r->to_ledger = in.varint();
  r->numerator = in.varint();
  r->denominator = in.varint();
  r->fee_bps = in.bounded<std::uint32_t>(UINT32_MAX);
  r->member_daily_cap = in.varint();
  r->pair_daily_cap = in.varint();
  r->from_exchange_account = in.varint();
  r->to_exchange_account = in.varint();
  r->timestamp = in.varint();
  if (in.finish() != domain::DecodeError::none) return Status::corruption("bad rate record");
  return Status::ok();
}

Status decode_process(const rocksdb::Slice& v, domain::ProcessRecord* out) {
  if (domain::decode_process_record(std::string_view(v.data(), v.size()), out) !=
      domain::DecodeError::none) {
    return Status::corruption("bad process record");
  }
  return Status::ok();
}

}  // namespace

/// The updates of the big families are collected and written in key order: each memtable
/// insert then starts next to the previous one (the skiplist keeps the last insert's splice),
/// instead of searching from the top for keys spread over the whole memtable.
///
/// History is written in groups: an account's entries of one write (newest first, at most
/// history_group_max) make one row keyed by the oldest one's position. Two rows per transfer
/// were the read models' largest cost; now it is about one per account touched per write.
/// Groups of one account never overlap (each write holds the positions after the previous
/// one), so a scan newest first from position p seeks to the first group whose oldest entry
/// is at or below p and skips that group's newer entries.
struct ReadModel::Writer::Impl {
  /// One of the big families and its updates of this batch. Their values are appended to one
  /// buffer as they arrive; seal() sorts small references by key (numeric: every key of these
  /// families is one or two big-endian u64s) and writes them in key order. The sort is stable:
  /// of two updates of one key, the later one is written last and wins.
  struct Family {
    struct Ref {
      std::uint64_t hi;
      std::uint64_t lo;
      /// The value is values[value_begin, value_end).
      std::uint32_t value_begin;
      std::uint32_t value_end;
    };
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    /// 8 (hi only) or 16 bytes.
    std::size_t key_size = 16;
    /// History: consecutive updates of one `hi` make one row (see above).
    bool grouped = false;
    std::string values;
    std::vector<Ref> refs;
    /// seal()'s working space, kept for the next write.
    std::vector<Ref> sorted;
    std::vector<rocksdb::Slice> parts;

    /// Starts an update of (hi, lo): the caller appends its value to `values`, then end().
    /// Values are appended back to back, so one begins where the previous one ended.
    std::string& begin() { return values; }
    void end(KeyParts key) {
      POINTEX_ASSERT(values.size() <= UINT32_MAX);
      const std::uint32_t value_begin = refs.empty() ? 0 : refs.back().value_end;
      refs.push_back({key.hi, key.lo, value_begin, static_cast<std::uint32_t>(values.size())});
    }
    void seal(rocksdb::WriteBatch& batch) {
      sort_by_key(refs, sorted);  // stable: of two updates of one key, the later stays last
      // In key order the values are read all over `values` (megabytes): fetch them ahead.
      constexpr std::size_t ahead = 16;
      char key[16];
      for (std::size_t i = 0; i < refs.size();) {
        if (i + ahead < refs.size())
          __builtin_prefetch(values.data() + refs[i + ahead].value_begin);
        std::size_t next = i + 1;
        if (grouped) {
          while (next < refs.size() && refs[next].hi == refs[i].hi && next - i < history_group_max)
            ++next;
        }
        parts.clear();
        for (std::size_t j = i; j < next; ++j) {
          parts.emplace_back(values.data() + refs[j].value_begin,
                             refs[j].value_end - refs[j].value_begin);
        }
        write_be64(key, refs[i].hi);
        write_be64(key + 8, refs[next - 1].lo);  // history: the group's oldest position
        const rocksdb::Slice k(key, key_size);
        (void)batch.Put(handle, rocksdb::SliceParts(&k, 1),
                        rocksdb::SliceParts(parts.data(), static_cast<int>(parts.size())));
        i = next;
      }
      refs.clear();
      values.clear();
    }
  };
  rocksdb::WriteBatch batch;
  Db* db = nullptr;
  Family accounts, transfers, history;

  explicit Impl(Db* d)
      : db(d),
        accounts{d->accounts, 8, false, {}, {}, {}, {}},
        transfers{d->transfers, 16, false, {}, {}, {}, {}},
        history{d->history, 16, true, {}, {}, {}, {}} {}

  std::size_t collected() const {
    return accounts.refs.size() + transfers.refs.size() + history.refs.size();
  }

  void seal() {
    for (Family* f : {&accounts, &transfers, &history}) f->seal(batch);
  }
};

ReadModel::ReadModel(std::shared_ptr<Db> db) : db_(std::move(db)) {}

Status ReadModel::open(const std::string& data_dir, std::unique_ptr<ReadModel>* out) {
  std::shared_ptr<Db> db;
  const Status s = Db::open(data_dir + "/read-models", Db::Kind::read_models, &db);
  if (!s.is_ok()) return s;
  *out = std::make_unique<ReadModel>(std::move(db));
  return Status::ok();
}

Status ReadModel::open_read_only(const std::string& data_dir, std::unique_ptr<ReadModel>* out) {
  std::shared_ptr<Db> db;
  const Status s = Db::open_read_only(data_dir + "/read-models", Db::Kind::read_models, &db);
  if (!s.is_ok()) return s;
  *out = std::make_unique<ReadModel>(std::move(db));
  return Status::ok();
}

ReadModel::Writer::Writer(const ReadModel& model)
    : impl_(std::make_unique<Impl>(model.db_.get())) {}
ReadModel::Writer::~Writer() = default;
std::size_t ReadModel::Writer::size() const {
  return impl_->collected() + impl_->batch.Count();
}
namespace {

/// Empties `v` and gives its memory back if it holds more than `max_bytes`.
template <class T>
void release_beyond(T& v, std::size_t max_bytes) {
  if (v.capacity() * sizeof(v[0]) > max_bytes) {
    T().swap(v);
  } else {
    v.clear();
  }
}

}  // namespace

void ReadModel::Writer::clear() {
  release_all_beyond(64U << 20);
}
void ReadModel::Writer::trim() {
  release_all_beyond(1U << 20);
}

void ReadModel::Writer::release_all_beyond(std::size_t max_bytes) {
  // A WriteBatch's Clear keeps its buffer; a fresh one gives it back.
  if (impl_->batch.Data().capacity() > max_bytes) {
    impl_->batch = rocksdb::WriteBatch();
  } else {
    impl_->batch.Clear();
  }
  for (Impl::Family* f : {&impl_->accounts, &impl_->transfers, &impl_->history}) {
    release_beyond(f->values, max_bytes);
    release_beyond(f->refs, max_bytes);
    release_beyond(f->sorted, max_bytes);
    release_beyond(f->parts, max_bytes);
  }
}

std::size_t ReadModel::Writer::retained_bytes() const {
  std::size_t bytes = impl_->batch.Data().capacity();
  for (const Impl::Family* f : {&impl_->accounts, &impl_->transfers, &impl_->history}) {
    bytes += f->values.capacity() +
             (f->refs.capacity() + f->sorted.capacity()) * sizeof(Impl::Family::Ref) +
             f->parts.capacity() * sizeof(rocksdb::Slice);
  }
  return bytes;
}

// Puts into a WriteBatch fail only past its 4 GiB limit; batches here are far smaller.
void ReadModel::Writer::put_account(const Account& account, std::uint64_t last_position,
                                    std::uint64_t debit_transfers) {
  encode_account(impl_->accounts.begin(), account, last_position, debit_transfers);
  impl_->accounts.end({account.spec.id, 0});  // key1: the first 8 bytes
}
void ReadModel::Writer::put_ledger(const Ledger& ledger) {
  (void)impl_->batch.Put(impl_->db->ledgers, key1(ledger.id), encode_ledger(ledger));
}
void ReadModel::Writer::put_expiry(AccountId debit, TransferId id, std::uint64_t expires_at) {
  (void)impl_->batch.Put(impl_->db->expiries, key2(debit, id), key1(expires_at));
}
void ReadModel::Writer::delete_expiry(AccountId debit, TransferId id) {
  (void)impl_->batch.Delete(impl_->db->expiries, key2(debit, id));
}
void ReadModel::Writer::set_account_count(std::uint64_t count) {
  (void)impl_->batch.Put(impl_->db->meta, account_count_key, key1(count));
}
void ReadModel::Writer::put_transfer(const TransferInfo& t) {
  encode_transfer(impl_->transfers.begin(), t);
  impl_->transfers.end(transfer_key_parts(t.debit_account, t.request.id));
}
void ReadModel::Writer::put_history(AccountId account, const HistoryEntry& entry) {
  encode_history(impl_->history.begin(), entry);
  impl_->history.end(history_key_parts(account, entry.position));
}
void ReadModel::Writer::put_stats(LedgerId ledger, const DayStats& stats) {
  (void)impl_->batch.Put(impl_->db->stats, stats_key(ledger, stats.day), encode_stats(stats));
}
void ReadModel::Writer::put_rate(const Rate& rate) {
  (void)impl_->batch.Put(impl_->db->rates, rate_key(rate.from_ledger, rate.to_ledger),
                         encode_rate(rate));
}
void ReadModel::Writer::put_rules(const EarningRules& rules) {
  (void)impl_->batch.Put(impl_->db->rules, key1(rules.ledger), domain::encode_rules(rules));
}
void ReadModel::Writer::put_process(const domain::ProcessRecord& record) {
  (void)impl_->batch.Put(impl_->db->processes, process_key(record.kind, record.id),
                         domain::encode_process_record(record));
}
void ReadModel::Writer::set_process_open(domain::ProcessKind kind, std::uint64_t id, bool open) {
  if (open) {
    (void)impl_->batch.Put(impl_->db->open_processes, process_key(kind, id), "");
  } else {
    (void)impl_->batch.Delete(impl_->db->open_processes, process_key(kind, id));
  }
}
void ReadModel::Writer::put_counter(const domain::CounterKey& key, std::uint64_t value) {
  if (value == 0) {
    (void)impl_->batch.Delete(impl_->db->counters, counter_key(key));
  } else {
    (void)impl_->batch.Put(impl_->db->counters, counter_key(key), key1(value));
  }
}
void ReadModel::Writer::delete_counters_before(std::uint32_t day) {
  (void)impl_->batch.DeleteRange(impl_->db->counters, counter_key({0, 0, 0, 0}),
                                 counter_key({day, 0, 0, 0}));
}
void ReadModel::Writer::put_webhook(const domain::WebhookRecord& record) {
  (void)impl_->batch.Put(impl_->db->webhooks, key1(record.webhook.id),
                         domain::encode_webhook_record(record));
}
void ReadModel::Writer::delete_webhook(WebhookId id) {
  (void)impl_->batch.Delete(impl_->db->webhooks, key1(id));
}
void ReadModel::Writer::set_checkpoint(std::uint64_t position) {
  (void)impl_->batch.Put(impl_->db->meta, checkpoint_key, key1(position));
}

Status ReadModel::write(Writer& writer) {
  for (std::int64_t left = fail_after_.load(); left >= 0;) {
    if (left == 0) return Status::io_error("writing read models: injected failure");
    if (fail_after_.compare_exchange_weak(left, left - 1)) break;
  }
  writer.impl_->seal();
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // see Db::open_once: a crash replays the log after the checkpoint
  return from_rocks(db_->db->Write(wo, &writer.impl_->batch), "writing read models");
}

Status ReadModel::checkpoint(std::uint64_t* position) const {
  std::string v;
  const rocksdb::Status s = db_->db->Get(rocksdb::ReadOptions(), db_->meta, checkpoint_key, &v);
  if (s.IsNotFound()) {
    *position = 0;
    return Status::ok();
  }
  if (!s.ok()) return from_rocks(s, "reading checkpoint");
  if (v.size() != 8) return Status::corruption("bad read-model checkpoint");
  *position = get_be64(v.data());
  return Status::ok();
}

bool ReadModel::format_reset() const {
  return db_->format_reset;
}

namespace {

/// Batched point reads of `keys` (in key order) from `cf`: fn(value) for each key found.
Status multi_get(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                 const std::vector<std::string>& keys, const char* what,
                 const std::function<Status(const std::string& value)>& fn) {
  constexpr std::size_t chunk = 1024;
  std::vector<rocksdb::Slice> slices;
  std::vector<rocksdb::PinnableSlice> values(std::min(chunk, keys.size()));
  std::vector<rocksdb::Status> statuses(values.size());
  std::string value;
  for (std::size_t begin = 0; begin < keys.size(); begin += chunk) {
    const std::size_t n = std::min(chunk, keys.size() - begin);
    slices.clear();
    for (std::size_t i = 0; i < n; ++i) slices.emplace_back(keys[begin + i]);
    for (auto& v : values) v.Reset();
    db.MultiGet(rocksdb::ReadOptions(), cf, n, slices.data(), values.data(), statuses.data(),
                /*sorted_input=*/true);
    for (std::size_t i = 0; i < n; ++i) {
      if (statuses[i].IsNotFound()) continue;
      if (!statuses[i].ok()) return from_rocks(statuses[i], what);
      value.assign(values[i].data(), values[i].size());
      const Status s = fn(value);
      if (!s.is_ok()) return s;
    }
  }
  return Status::ok();
}

}  // namespace

Status ReadModel::accounts(
    const std::vector<AccountId>& sorted_ids,
    const std::function<void(Account&& account, std::uint64_t debit_transfers)>& fn) const {
  std::vector<std::string> keys;
  keys.reserve(sorted_ids.size());
  for (const AccountId id : sorted_ids) keys.push_back(key1(id));
  return multi_get(*db_->db, db_->accounts, keys, "reading accounts", [&](const std::string& v) {
    Account a;
    std::uint64_t debits = 0;
    const Status d = decode_account(v, &a, nullptr, &debits);
    if (d.is_ok()) fn(std::move(a), debits);
    return d;
  });
}

Status ReadModel::accounts_with_lots(const std::function<void(Account&& account)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db->NewIterator(rocksdb::ReadOptions(), db_->accounts));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Account a;
    const Status s = decode_account(it->value().ToString(), &a, nullptr, nullptr);
    if (!s.is_ok()) return s;
    if (!a.expiring.empty()) fn(std::move(a));
  }
  return from_rocks(it->status(), "reading accounts");
}

Status ReadModel::transfers(AccountId debit, const std::vector<TransferId>& sorted_ids,
                            const std::function<void(TransferInfo&& transfer)>& fn) const {
  std::vector<std::string> keys;
  keys.reserve(sorted_ids.size());
  for (const TransferId id : sorted_ids) keys.push_back(transfer_key(debit, id));
  return multi_get(*db_->db, db_->transfers, keys, "reading transfers", [&](const std::string& v) {
    TransferInfo t;
    const Status d = decode_transfer(v, &t);
    if (d.is_ok()) fn(std::move(t));
    return d;
  });
}

Status ReadModel::account_count(std::uint64_t* count) const {
  std::string v;
  const rocksdb::Status s = db_->db->Get(rocksdb::ReadOptions(), db_->meta, account_count_key, &v);
  *count = 0;
  if (s.IsNotFound()) return Status::ok();
  if (!s.ok()) return from_rocks(s, "reading account count");
  if (v.size() != 8) return Status::corruption("bad read-model account count");
  *count = get_be64(v.data());
  return Status::ok();
}

Status ReadModel::ledgers(std::vector<Ledger>* out) const {
  out->clear();
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), db_->ledgers));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Ledger l;
    const Status s = decode_ledger(it->value(), &l);
    if (!s.is_ok()) return s;
    out->push_back(std::move(l));
  }
  return from_rocks(it->status(), "reading ledgers");
}

Status ReadModel::expiries(
    const std::function<void(AccountId, TransferId, std::uint64_t)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db->NewIterator(rocksdb::ReadOptions(), db_->expiries));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 16 || it->value().size() != 8) {
      return Status::corruption("bad expiry record");
    }
    fn(get_be64(it->key().data()), get_be64(it->key().data() + 8), get_be64(it->value().data()));
  }
  return from_rocks(it->status(), "reading expiries");
}

Status ReadModel::account(AccountId id, std::optional<Account>* account,
                          std::uint64_t* last_position, std::uint64_t* debit_transfers) const {
  std::string v;
  const rocksdb::Status s = db_->db->Get(rocksdb::ReadOptions(), db_->accounts, key1(id), &v);
  account->reset();
  if (s.IsNotFound()) return Status::ok();
  if (!s.ok()) return from_rocks(s, "reading account");
  Account a;
  const Status d = decode_account(v, &a, last_position, debit_transfers);
  if (d.is_ok()) *account = std::move(a);
  return d;
}

Status ReadModel::transfer(AccountId debit, TransferId id,
                           std::optional<TransferInfo>* transfer) const {
  std::string v;
  const rocksdb::Status s =
      db_->db->Get(rocksdb::ReadOptions(), db_->transfers, transfer_key(debit, id), &v);
  transfer->reset();
  if (s.IsNotFound()) return Status::ok();
  if (!s.ok()) return from_rocks(s, "reading transfer");
  TransferInfo t;
  const Status d = decode_transfer(v, &t);
  if (d.is_ok()) *transfer = t;
  return d;
}

Status ReadModel::transfers_by_id(TransferId id, std::vector<TransferInfo>* out) const {
  out->clear();
  const std::string prefix = key1(id);
  rocksdb::ReadOptions ro;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(ro, db_->transfers));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    TransferInfo t;
    const Status s = decode_transfer(it->value().ToString(), &t);
    if (!s.is_ok()) return s;
    out->push_back(std::move(t));
  }
  return from_rocks(it->status(), "reading transfers");
}

Status ReadModel::history(AccountId account, const HistoryFilter& filter, std::uint32_t limit,
                          std::vector<HistoryEntry>* out, std::uint64_t* next_before) const {
  out->clear();
  *next_before = 0;
  const std::string prefix = key1(account);
  const std::uint64_t start = filter.before_position == 0 ? UINT64_MAX : filter.before_position - 1;
  rocksdb::ReadOptions ro;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(ro, db_->history));
  bool done = false;
  for (it->Seek(history_key(account, start)); !done && it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    const Status s = for_each_history(it->key(), it->value(), [&](const HistoryEntry& e) {
      if (e.position > start) return true;  // the first group's entries newer than the page
      if (filter.from_ns != 0 && e.timestamp < filter.from_ns) return !(done = true);  // older
      if (filter.to_ns != 0 && e.timestamp >= filter.to_ns) return true;
      if (filter.code != 0 && e.code != filter.code) return true;
      if (out->size() == limit) {
        *next_before = out->back().position;
        return !(done = true);
      }
      out->push_back(e);
      return true;
    });
    if (!s.is_ok()) return s;
  }
  return from_rocks(it->status(), "reading history");
}

Status ReadModel::history_at(AccountId account, std::uint64_t position,
                             std::optional<HistoryEntry>* out) const {
  out->reset();
  rocksdb::ReadOptions ro;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(ro, db_->history));
  it->Seek(history_key(account, position));  // the group holding it, if any
  if (!it->Valid() || !it->key().starts_with(key1(account))) {
    return from_rocks(it->status(), "reading history");
  }
  return for_each_history(it->key(), it->value(), [&](const HistoryEntry& e) {
    if (e.position == position) *out = e;
    return e.position > position;
  });
}

Status ReadModel::stats(LedgerId ledger, std::uint32_t from_day, std::uint32_t to_day,
                        std::vector<DayStats>* out) const {
  out->clear();
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), db_->stats));
  const std::string end = stats_key(ledger, to_day);
  for (it->Seek(stats_key(ledger, from_day)); it->Valid() && it->key().compare(end) <= 0;
       it->Next()) {
    DayStats d;
    const Status s = decode_stats(it->key(), it->value(), &d);
    if (!s.is_ok()) return s;
    out->push_back(d);
  }
  return from_rocks(it->status(), "reading stats");
}

Status ReadModel::latest_stats(LedgerId ledger, std::optional<DayStats>* out) const {
  out->reset();
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), db_->stats));
  it->SeekForPrev(stats_key(ledger, UINT32_MAX));
  if (it->Valid() && it->key().starts_with(key1(ledger))) {
    DayStats d;
    const Status s = decode_stats(it->key(), it->value(), &d);
    if (!s.is_ok()) return s;
    *out = d;
  }
  return from_rocks(it->status(), "reading stats");
}

Status ReadModel::rates(std::vector<Rate>* out) const {
  out->clear();
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), db_->rates));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Rate r;
    const Status s = decode_rate(it->value(), &r);
    if (!s.is_ok()) return s;
    out->push_back(r);
  }
  return from_rocks(it->status(), "reading rates");
}

Status ReadModel::rules(std::vector<EarningRules>* out) const {
  out->clear();
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), db_->rules));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    EarningRules r;
    if (domain::decode_rules(it->value().ToStringView(), &r) != domain::DecodeError::none) {
      return Status::corruption("read models: earning rules do not decode");
    }
    out->push_back(std::move(r));
  }
  return from_rocks(it->status(), "reading earning rules");
}

Status ReadModel::process(domain::ProcessKind kind, std::uint64_t id,
                          std::optional<domain::ProcessRecord>* out) const {
  out->reset();
  std::string v;
  const rocksdb::Status s =
      db_->db->Get(rocksdb::ReadOptions(), db_->processes, process_key(kind, id), &v);
  if (s.IsNotFound()) return Status::ok();
  if (!s.ok()) return from_rocks(s, "reading process");
  domain::ProcessRecord record;
  const Status d = decode_process(rocksdb::Slice(v), &record);
  if (d.is_ok()) *out = std::move(record);
  return d;
}

Status ReadModel::open_processes(std::vector<domain::ProcessRecord>* out) const {
  out->clear();
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db->NewIterator(rocksdb::ReadOptions(), db_->open_processes));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 9) return Status::corruption("bad open process key");
    std::optional<domain::ProcessRecord> record;
    const Status s = process(static_cast<domain::ProcessKind>(it->key()[0]),
                             get_be64(it->key().data() + 1), &record);
    if (!s.is_ok()) return s;
    if (!record) return Status::corruption("open process without its record");
    out->push_back(std::move(*record));
  }
  return from_rocks(it->status(), "reading open processes");
}

Status ReadModel::counters(
    std::uint32_t from_day,
    const std::function<void(const domain::CounterKey&, std::uint64_t)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db->NewIterator(rocksdb::ReadOptions(), db_->counters));
  for (it->Seek(counter_key({from_day, 0, 0, 0})); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    if (k.size() != 21 || it->value().size() != 8) return Status::corruption("bad counter");
    domain::CounterKey key;
    key.day = static_cast<std::uint32_t>(get_be64(k.data()) >> 32);
    key.scope = static_cast<std::uint8_t>(k[4]);
    key.a = get_be64(k.data() + 5);
    key.b = get_be64(k.data() + 13);
    fn(key, get_be64(it->value().data()));
  }
  return from_rocks(it->status(), "reading counters");
}

Status ReadModel::counter(const domain::CounterKey& key, std::uint64_t* value) const {
  *value = 0;
  std::string v;
  const rocksdb::Status s =
      db_->db->Get(rocksdb::ReadOptions(), db_->counters, counter_key(key), &v);
  if (s.IsNotFound()) return Status::ok();
  if (!s.ok()) return from_rocks(s, "reading counter");
  if (v.size() != 8) return Status::corruption("bad counter");
  *value = get_be64(v.data());
  return Status::ok();
}

Status ReadModel::webhooks(domain::WebhookTable* out) const {
  out->clear();
  rocksdb::ReadOptions all;
  all.total_order_seek = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(all, db_->webhooks));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    domain::WebhookRecord record;
    const rocksdb::Slice v = it->value();
    if (domain::decode_webhook_record(std::string_view(v.data(), v.size()), &record) !=
        domain::DecodeError::none) {
      return Status::corruption("bad webhook record");
    }
    const WebhookId id = record.webhook.id;
    (*out)[id] = std::move(record);
  }
  return from_rocks(it->status(), "reading webhooks");
}

Status ReadModel::drop_all() {
  // The big families take memtable insert hints, and RocksDB 7.8 keeps one hint map for a
  // memtable's point entries and its range deletions: a range deletion into a memtable that
  // took hinted inserts, or hinted inserts after one, would follow a hint into the other
  // skiplist. So the range deletions get a memtable of their own: flushed before (no hints
  // yet) and after (the next inserts start a fresh map). A crash between the write and the
  // second flush is safe too: Db::open flushes what the write-ahead log replays.
  Status s = db_->flush("dropping read models (flush)");
  if (!s.is_ok()) return s;
  rocksdb::WriteBatch batch;
  const std::string lo;
  const std::string hi(22, '\xff');  // past the longest key (counters: 21 bytes)
  for (rocksdb::ColumnFamilyHandle* cf : db_->read_models()) {
    (void)batch.DeleteRange(cf, lo, hi);
  }
  (void)batch.Delete(db_->meta, checkpoint_key);
  (void)batch.Delete(db_->meta, account_count_key);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = from_rocks(db_->db->Write(wo, &batch), "dropping read models");
  return s.is_ok() ? db_->flush("dropping read models (flush)") : s;
}

Status ReadModel::dump(const std::function<void(const std::string&, const std::string&,
                                                const std::string&)>& fn) const {
  rocksdb::ReadOptions all;
  all.total_order_seek = true;  // across prefixes (tests only)
  for (rocksdb::ColumnFamilyHandle* cf : db_->read_models()) {
    std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(all, cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (cf != db_->history) {
        fn(cf->GetName(), it->key().ToString(), it->value().ToString());
        continue;
      }
      // One item per entry: how a history is grouped depends on where writes ended, which a
      // rebuild does not repeat.
      const Status s = for_each_history(it->key(), it->value(), [&](const HistoryEntry& e) {
        std::string v;
        encode_history(v, e);
        fn(cf->GetName(), history_key(get_be64(it->key().data()), e.position), v);
        return true;
      });
      if (!s.is_ok()) return s;
    }
    if (!it->status().ok()) return from_rocks(it->status(), "dumping read models");
  }
  return Status::ok();
}

}  // namespace pointex::store
