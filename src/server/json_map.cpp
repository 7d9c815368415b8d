#include "server/json_map.hpp"

#include <algorithm>
#include <limits>

#include "domain/webhook.hpp"

namespace pointex::server {

using nlohmann::json;

namespace {

/// Reads the fields of one request object; the first problem wins and is kept in `err`.
/// `item`: the object's index in a batch body (errors name it, e.g. `[3].amount`), or -1.
class Fields {
 public:
  Fields(const json& j, std::ptrdiff_t item, ApiError* err) : j_(j), item_(item), err_(err) {}

  /// Every field must be in `known`; the object must be an object.
  bool only(std::initializer_list<const char*> known) {
    if (!j_.is_object()) return fail("", "invalid_json", "expected a JSON object");
    for (const auto& item : j_.items()) {
      const bool found =
          std::any_of(known.begin(), known.end(), [&](const char* k) { return item.key() == k; });
      if (!found) return fail(item.key(), "unknown_field", "unknown field");
    }
    return true;
  }

  bool has(const char* key) const { return j_.contains(key); }

  template <typename T>
  bool uint(const char* key, T* out, std::uint64_t max = std::numeric_limits<T>::max()) {
    const auto it = j_.find(key);
    if (it == j_.end()) return true;
    if (!it->is_number_unsigned()) {
      return fail(key, "invalid_field",
                  "expected an unsigned integer (not a string, float or "
                  "negative number, at most 2^64-1)");
    }
    const auto v = it->get<std::uint64_t>();
    if (v > max) return fail(key, "invalid_field", "must be at most " + std::to_string(max));
    *out = static_cast<T>(v);
    return true;
  }

  bool string(const char* key, std::string* out, std::size_t bytes_max, bool required) {
    const auto it = j_.find(key);
    if (it == j_.end()) {
      return required ? fail(key, "missing_field", "required") : true;
    }
    if (!it->is_string()) return fail(key, "invalid_field", "expected a string");
    *out = it->get<std::string>();
    if (out->size() > bytes_max) {
      return fail(key, "invalid_field", "longer than " + std::to_string(bytes_max) + " bytes");
    }
    return true;
  }

  /// An array of flag names mapped through `bit_of` (0: unknown name).
  template <typename BitOf>
  bool flags(const char* key, std::uint32_t* out, BitOf bit_of) {
    const auto it = j_.find(key);
    if (it == j_.end()) return true;
    if (!it->is_array()) return fail(key, "invalid_field", "expected an array of flag names");
    std::uint32_t bits = 0;
    for (const json& f : *it) {
      const std::uint32_t bit = f.is_string() ? bit_of(f.get<std::string>()) : 0;
      if (bit == 0) return fail(key, "invalid_field", "unknown flag " + f.dump());
      bits |= bit;
    }
    *out = bits;
    return true;
  }

  bool fail(const std::string& field, const char* error, const std::string& message) {
    err_->status = 400;
    err_->error = error;
    err_->field = field;
    const std::string where = item_ >= 0 ? "[" + std::to_string(item_) + "]." : "";
    const std::string at = field.empty() ? where : (where.empty() ? field : where + field);
    err_->message = at.empty() ? message : at + ": " + message;
    return false;
  }

 private:
  const json& j_;
  std::ptrdiff_t item_;
  ApiError* err_;
};

std::uint32_t account_flag_bit(const std::string& name) {
  if (name == "debits_must_not_exceed_credits")
    return account_flags::debits_must_not_exceed_credits;
  if (name == "credits_must_not_exceed_debits")
    return account_flags::credits_must_not_exceed_debits;
  if (name == "closed") return account_flags::closed;  // the engine answers flags_invalid
  return 0;
}

std::uint32_t transfer_flag_bit(const std::string& name) {
  if (name == "pending") return transfer_flags::pending;
  if (name == "post_pending") return transfer_flags::post_pending;
  if (name == "void_pending") return transfer_flags::void_pending;
  if (name == "balancing_debit") return transfer_flags::balancing_debit;
  return 0;
}

json transfer_flags_json(std::uint32_t flags) {
  json a = json::array();
  if (flags & transfer_flags::pending) a.push_back("pending");
  if (flags & transfer_flags::post_pending) a.push_back("post_pending");
  if (flags & transfer_flags::void_pending) a.push_back("void_pending");
  if (flags & transfer_flags::balancing_debit) a.push_back("balancing_debit");
  return a;
}

ApiError batch_too_large(std::size_t items_max) {
  return {400, "batch_too_large",
          "more than " + std::to_string(items_max) + " items in one request", ""};
}

/// Maps a one-or-array body item by item with `map_item(Fields&, Item*)`, which reports the
/// first problem through the Fields; false (and `*err` set) at the first bad item.
template <typename Item, typename MapItem>
bool map_items(const json& j, std::size_t items_max, std::vector<Item>* out, ApiError* err,
               MapItem map_item) {
  const bool batch = j.is_array();
  if (batch && j.size() > items_max) {
    *err = batch_too_large(items_max);
    return false;
  }
  const std::size_t n = batch ? j.size() : 1;
  out->reserve(out->size() + n);
  for (std::size_t i = 0; i < n; ++i) {
    Fields f(batch ? j[i] : j, batch ? static_cast<std::ptrdiff_t>(i) : -1, err);
    Item item;
    if (!map_item(f, &item)) return false;
    out->push_back(std::move(item));
  }
  return true;
}

json balances_json(std::uint64_t dp, std::uint64_t cp, std::uint64_t dpend, std::uint64_t cpend) {
  const auto balance = static_cast<std::int64_t>(cp) - static_cast<std::int64_t>(dp);
  return {{"debits_posted", dp},     {"credits_posted", cp},
          {"debits_pending", dpend}, {"credits_pending", cpend},
          {"balance", balance},      {"available", balance - static_cast<std::int64_t>(dpend)}};
}

}  // namespace

std::string error_body(const ApiError& e) {
  json j = {{"error", e.error}, {"message", e.message}};
  if (!e.field.empty()) j["field"] = e.field;
  return j.dump();
}

bool parse_body(std::string_view body, json* out, ApiError* err) {
  // Nesting first, outside strings: a deep body is refused before the parser recurses.
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > json_depth_max) {
        *err = {400, "invalid_json", "nested deeper than " + std::to_string(json_depth_max), ""};
        return false;
      }
    } else if (c == '}' || c == ']') {
      if (depth > 0) --depth;
    }
  }
  *out = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) {
    *err = {400, "invalid_json", "the body is not valid JSON", ""};
    return false;
  }
  return true;
}

bool map_ledger(const json& j, Ledger* out, ApiError* err) {
  Fields f(j, -1, err);
  return f.only({"id", "code", "name", "expiry_days"}) && f.uint("id", &out->id) &&
         f.string("code", &out->code, ledger_code_bytes_max, true) &&
         f.string("name", &out->name, ledger_name_bytes_max, false) &&
         f.uint("expiry_days", &out->expiry_days);
}

bool map_rate(const json& j, Rate* out, ApiError* err) {
  Fields f(j, -1, err);
  return f.only({"numerator", "denominator", "fee_bps", "daily_cap", "pair_daily_cap",
                 "from_exchange_account", "to_exchange_account"}) &&
         f.uint("numerator", &out->numerator) && f.uint("denominator", &out->denominator) &&
         f.uint("fee_bps", &out->fee_bps, 10000) && f.uint("daily_cap", &out->member_daily_cap) &&
         f.uint("pair_daily_cap", &out->pair_daily_cap) &&
         f.uint("from_exchange_account", &out->from_exchange_account) &&
         f.uint("to_exchange_account", &out->to_exchange_account);
}

bool map_exchange(const json& j, Exchange* out, ApiError* err) {
  Fields f(j, -1, err);
  return f.only({"id", "from_account", "to_account", "amount"}) && f.uint("id", &out->id) &&
         f.uint("from_account", &out->from_account) && f.uint("to_account", &out->to_account) &&
         f.uint("amount", &out->amount);
}

bool map_order(const json& j, Order* out, ApiError* err) {
  Fields f(j, -1, err);
  if (!f.only({"id", "member_account", "merchant_account", "points", "cash", "timeout_s",
               "provider"}) ||
      !f.uint("id", &out->id) || !f.uint("member_account", &out->member_account) ||
      !f.uint("merchant_account", &out->merchant_account) || !f.uint("points", &out->points) ||
      !f.uint("timeout_s", &out->timeout_s) ||
      !f.string("provider", &out->provider, payment_provider_name_bytes_max, false)) {
    return false;
  }
  const auto cash = j.find("cash");
  if (cash == j.end()) return true;
  Fields c(*cash, -1, err);
  if (!c.only({"amount", "currency"}) || !c.uint("amount", &out->cash.amount) ||
      !c.string("currency", &out->cash.currency, 16, false)) {
    // Named from the top: `cash.amount: ...`, or `cash: expected a JSON object`.
    err->message = (err->field.empty() ? "cash: " : "cash.") + err->message;
    err->field = err->field.empty() ? "cash" : "cash." + err->field;
    if (err->error == "invalid_json") err->error = "invalid_field";
    return false;
  }
  return true;
}

namespace {

/// An array field of objects, each mapped by `map_item` with the field's name in errors.
template <typename Item, typename MapItem>
bool map_array(const json& j, const char* key, std::size_t items_max, std::vector<Item>* out,
               ApiError* err, MapItem map_item) {
  const auto it = j.find(key);
  if (it == j.end()) return true;
  Fields top(j, -1, err);
  if (!it->is_array()) return top.fail(key, "invalid_field", "expected an array");
  if (it->size() > items_max) {
    return top.fail(key, "invalid_field", "at most " + std::to_string(items_max) + " items");
  }
  for (std::size_t i = 0; i < it->size(); ++i) {
    Fields f((*it)[i], -1, err);
    Item item;
    if (!map_item(f, (*it)[i], &item)) {
      const std::string at = std::string(key) + "[" + std::to_string(i) + "]";
      err->message = at + (err->field.empty() ? ": " : ".") + err->message;
      err->field = err->field.empty() ? at : at + "." + err->field;
      if (err->error == "invalid_json") err->error = "invalid_field";
      return false;
    }
    out->push_back(std::move(item));
  }
  return true;
}

}  // namespace

bool map_rules(const json& j, EarningRules* out, ApiError* err) {
  Fields f(j, -1, err);
  if (!f.only({"issuer_account", "expiry_account", "currency", "categories", "min_purchase",
               "cap_per_order", "cap_per_member_day", "return_window_s", "campaigns"}) ||
      !f.uint("issuer_account", &out->issuer_account) ||
      !f.uint("expiry_account", &out->expiry_account) ||
      !f.string("currency", &out->currency, 16, true) ||
      !f.uint("min_purchase", &out->min_purchase) ||
      !f.uint("cap_per_order", &out->cap_per_order) ||
      !f.uint("cap_per_member_day", &out->cap_per_member_day) ||
      !f.uint("return_window_s", &out->return_window_s)) {
    return false;
  }
  if (!f.has("issuer_account")) return f.fail("issuer_account", "missing_field", "required");
  if (!f.has("categories")) return f.fail("categories", "missing_field", "required");
  if (!map_array(j, "categories", rebate_categories_max, &out->categories, err,
                 [](Fields& c, const json&, CategoryRate* r) {
                   return c.only({"category", "rate_bps"}) &&
                          c.string("category", &r->category, rebate_category_bytes_max, true) &&
                          c.uint("rate_bps", &r->rate_bps) &&
                          (c.has("rate_bps") || c.fail("rate_bps", "missing_field", "required"));
                 })) {
    return false;
  }
  return map_array(j, "campaigns", rebate_campaigns_max, &out->campaigns, err,
                   [](Fields& c, const json& item, Campaign* x) {
                     if (!c.only({"starts_at", "ends_at", "multiplier_bps", "categories"}) ||
                         !c.uint("starts_at", &x->starts_at) || !c.uint("ends_at", &x->ends_at) ||
                         !c.uint("multiplier_bps", &x->multiplier_bps)) {
                       return false;
                     }
                     if (!c.has("ends_at")) return c.fail("ends_at", "missing_field", "required");
                     const auto names = item.find("categories");
                     if (names == item.end()) return true;
                     if (!names->is_array() || names->size() > rebate_categories_max) {
                       return c.fail("categories", "invalid_field",
                                     "expected an array of category names");
                     }
                     for (const json& n : *names) {
                       if (!n.is_string()) {
                         return c.fail("categories", "invalid_field", "expected names");
                       }
                       x->categories.push_back(n.get<std::string>());
                     }
                     return true;
                   });
}

bool map_checked_transfer(const json& j, CheckedTransfer* out, ApiError* err) {
  Fields f(j, -1, err);
  if (!f.only({"transfer", "url", "check_after_s", "checks_max"}) ||
      !f.string("url", &out->url, check_back_url_bytes_max, true) ||
      !f.uint("check_after_s", &out->check_after_s) || !f.uint("checks_max", &out->checks_max)) {
    return false;
  }
  const auto t = j.find("transfer");
  if (t == j.end()) return f.fail("transfer", "missing_field", "required");
  if (!t->is_object()) return f.fail("transfer", "invalid_field", "expected a JSON object");
  std::vector<Transfer> one;
  if (!map_transfers(*t, 1, &one, err)) {
    err->message = "transfer." + err->message;
    err->field = err->field.empty() ? "transfer" : "transfer." + err->field;
    return false;
  }
  out->transfer = one.front();
  return true;
}

bool map_check_back_note(const json& j, std::string* note, ApiError* err) {
  Fields f(j, -1, err);
  return f.only({"note"}) && f.string("note", note, check_back_note_bytes_max, true);
}

bool map_purchase(const json& j, Purchase* out, ApiError* err) {
  Fields f(j, -1, err);
  return f.only({"id", "member_account", "amount", "currency", "category"}) &&
         f.uint("id", &out->id) && f.uint("member_account", &out->member_account) &&
         f.uint("amount", &out->amount) && f.string("currency", &out->currency, 16, true) &&
         f.string("category", &out->category, rebate_category_bytes_max, true);
}

bool map_refund(const json& j, Refund* out, ApiError* err) {
  Fields f(j, -1, err);
  return f.only({"id", "amount"}) && f.uint("id", &out->id) && f.uint("amount", &out->amount);
}

bool map_payment_result(const json& j, std::string* payment_id, PaymentStatus* status,
                        ApiError* err) {
  Fields f(j, -1, err);
  std::string text;
  if (!f.only({"payment_id", "status"}) ||
      !f.string("payment_id", payment_id, payment_id_bytes_max, true) ||
      !f.string("status", &text, 16, true)) {
    return false;
  }
  if (!payment_status_from_string(text, status)) {
    return f.fail("status", "invalid_field", "must be succeeded or failed");
  }
  return true;
}

bool map_accounts(const json& j, std::size_t items_max, std::vector<AccountSpec>* out,
                  ApiError* err) {
  return map_items(j, items_max, out, err, [](Fields& f, AccountSpec* a) {
    std::string kind;
    if (!f.only({"id", "ledger", "kind", "owner", "flags", "user_data"}) || !f.uint("id", &a->id) ||
        !f.uint("ledger", &a->ledger) || !f.string("kind", &kind, 16, true) ||
        !f.string("owner", &a->owner, owner_bytes_max, false) ||
        !f.uint("user_data", &a->user_data)) {
      return false;
    }
    const auto k = account_kind_from_string(kind);
    if (!k) return f.fail("kind", "invalid_field", "must be member, issuer or system");
    a->kind = *k;
    // Absent flags: members may not overdraw, other kinds have none. Present: as given.
    a->flags = a->kind == AccountKind::member ? account_flags::debits_must_not_exceed_credits : 0;
    if (f.has("flags")) {
      a->flags = 0;
      if (!f.flags("flags", &a->flags, account_flag_bit)) return false;
    }
    return true;
  });
}

bool map_transfers(const json& j, std::size_t items_max, std::vector<Transfer>* out,
                   ApiError* err) {
  return map_items(j, items_max, out, err, [](Fields& f, Transfer* t) {
    return f.only({"id", "debit_account", "credit_account", "amount", "ledger", "code", "flags",
                   "pending_id", "timeout_s", "user_data"}) &&
           f.uint("id", &t->id) && f.uint("debit_account", &t->debit_account) &&
           f.uint("credit_account", &t->credit_account) && f.uint("amount", &t->amount) &&
           f.uint("ledger", &t->ledger) && f.uint("code", &t->code) &&
           f.flags("flags", &t->flags, transfer_flag_bit) && f.uint("pending_id", &t->pending_id) &&
           f.uint("timeout_s", &t->timeout_s) && f.uint("user_data", &t->user_data);
  });
}

namespace {

/// The one-pass reader of parse_transfers: a SAX handler that fills Transfers and gives up
/// (returns false) on anything but a plainly valid body, leaving the error to the precise path.
class TransferSax {
 public:
  TransferSax(std::size_t items_max, std::vector<Transfer>* out)
      : items_max_(items_max), out_(out) {}

  bool start_array(std::size_t) {
    if (depth_ == 0) {
      batch_ = true;
    } else if (!(depth_ == item_depth() && field_ == Field::flags)) {
      return false;
    } else {
      current_.flags = 0;  // a repeated key replaces the earlier value, as in a JSON tree
    }
    ++depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    field_ = Field::none;
    return true;
  }
  bool start_object(std::size_t) {
    if (depth_ + 1 != item_depth()) return false;
    if (batch_ && out_->size() >= items_max_) return false;
    ++depth_;
    current_ = Transfer{};
    return true;
  }
  bool end_object() {
    --depth_;
    out_->push_back(current_);
    return true;
  }
  bool key(std::string& k) {
    field_ = field_of(k);
    return field_ != Field::none;
  }
  bool number_unsigned(std::uint64_t v) {
    if (depth_ != item_depth()) return false;
    switch (field_) {
      case Field::id:
        current_.id = v;
        return true;
      case Field::debit_account:
        current_.debit_account = v;
        return true;
      case Field::credit_account:
        current_.credit_account = v;
        return true;
      case Field::amount:
        current_.amount = v;
        return true;
      case Field::ledger:
        current_.ledger = v;
        return true;
      case Field::code:
        return narrow(v, &current_.code);
      case Field::pending_id:
        current_.pending_id = v;
        return true;
      case Field::timeout_s:
        return narrow(v, &current_.timeout_s);
      case Field::user_data:
        current_.user_data = v;
        return true;
      case Field::flags:
      case Field::none:
        break;
    }
    return false;
  }
  bool string(std::string& s) {
    if (depth_ != item_depth() + 1) return false;
    const std::uint32_t bit = transfer_flag_bit(s);
    current_.flags |= bit;
    return bit != 0;
  }
  // Anything else is not a plainly valid transfer body.
  bool null() { return false; }
  bool boolean(bool) { return false; }
  bool number_integer(std::int64_t) { return false; }
  bool number_float(double, const std::string&) { return false; }
  bool binary(json::binary_t&) { return false; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

 private:
  enum class Field : std::uint8_t {
    none,
    id,
    debit_account,
    credit_account,
    amount,
    ledger,
    code,
    flags,
    pending_id,
    timeout_s,
    user_data
  };
  static Field field_of(std::string_view k) {
    static constexpr std::pair<std::string_view, Field> fields[] = {
        {"id", Field::id},
        {"debit_account", Field::debit_account},
        {"credit_account", Field::credit_account},
        {"amount", Field::amount},
        {"ledger", Field::ledger},
        {"code", Field::code},
        {"flags", Field::flags},
        {"pending_id", Field::pending_id},
        {"timeout_s", Field::timeout_s},
        {"user_data", Field::user_data}};
    for (const auto& [name, field] : fields) {
      if (k == name) return field;
    }
    return Field::none;
  }
  /// Depth inside an item's object: 1 for a one-object body, 2 inside a batch's array.
  int item_depth() const { return batch_ ? 2 : 1; }
  template <typename T>
  static bool narrow(std::uint64_t v, T* out) {
    if (v > std::numeric_limits<T>::max()) return false;
    *out = static_cast<T>(v);
    return true;
  }

  const std::size_t items_max_;
  std::vector<Transfer>* out_;
  Transfer current_;
  Field field_ = Field::none;
  int depth_ = 0;
  bool batch_ = false;
};

}  // namespace

bool parse_transfers(std::string_view body, std::size_t items_max, std::vector<Transfer>* out,
                     ApiError* err) {
  TransferSax sax(items_max, out);
  if (json::sax_parse(body.begin(), body.end(), &sax)) return true;
  out->clear();
  json j;
  return parse_body(body, &j, err) && map_transfers(j, items_max, out, err);
}

bool parse_query(std::string_view query, std::initializer_list<const char*> allowed,
                 std::map<std::string, std::string>* out, ApiError* err) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    const std::string name(part.substr(0, eq));
    const std::string value(eq == std::string_view::npos ? "" : part.substr(eq + 1));
    const bool known =
        std::any_of(allowed.begin(), allowed.end(), [&](const char* k) { return name == k; });
    if (!known) {
      *err = {400, "unknown_field", "unknown query parameter", name};
      return false;
    }
    if (!out->emplace(name, value).second) {
      *err = {400, "invalid_field", "query parameter given twice", name};
      return false;
    }
  }
  return true;
}

bool parse_id(std::string_view s, std::uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  std::uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool query_uint(const std::map<std::string, std::string>& q, const char* name, std::uint64_t min,
                std::uint64_t max, std::uint64_t* out, ApiError* err) {
  const auto it = q.find(name);
  if (it == q.end()) return true;
  std::uint64_t v = 0;
  if (!parse_id(it->second, &v)) {
    *err = {400, "invalid_field", "expected an unsigned integer", name};
    return false;
  }
  if (v < min || v > max) {
    *err = {400, "invalid_field",
            "must be between " + std::to_string(min) + " and " + std::to_string(max), name};
    return false;
  }
  *out = v;
  return true;
}

json account_flags_json(std::uint32_t flags) {
  json a = json::array();
  if (flags & account_flags::debits_must_not_exceed_credits) {
    a.push_back("debits_must_not_exceed_credits");
  }
  if (flags & account_flags::credits_must_not_exceed_debits) {
    a.push_back("credits_must_not_exceed_debits");
  }
  if (flags & account_flags::closed) a.push_back("closed");
  return a;
}

json ledger_json(const Ledger& l) {
  return {{"id", l.id},
          {"code", l.code},
          {"name", l.name},
          {"expiry_days", l.expiry_days},
          {"timestamp", l.timestamp}};
}

json rate_json(const Rate& r) {
  return {{"from_ledger", r.from_ledger},
          {"to_ledger", r.to_ledger},
          {"numerator", r.numerator},
          {"denominator", r.denominator},
          {"fee_bps", r.fee_bps},
          {"daily_cap", r.member_daily_cap},
          {"pair_daily_cap", r.pair_daily_cap},
          {"from_exchange_account", r.from_exchange_account},
          {"to_exchange_account", r.to_exchange_account},
          {"timestamp", r.timestamp}};
}

json exchange_outcome_json(ExchangeId id, const ExchangeOutcome& o) {
  json j = {{"id", id},
            {"result", to_string(o.result)},
            {"debited", o.debited},
            {"credited", o.credited},
            {"fee", o.fee}};
  if (o.result == ExchangeResult::leg_failed) {
    j["leg"] = o.leg;
    j["leg_result"] = to_string(o.leg_result);
  }
  return j;
}

json exchange_info_json(const ExchangeInfo& x) {
  json j = {{"id", x.request.id},
            {"from_account", x.request.from_account},
            {"to_account", x.request.to_account},
            {"amount", x.request.amount},
            {"from_ledger", x.from_ledger},
            {"to_ledger", x.to_ledger},
            {"from_exchange_account", x.from_exchange_account},
            {"to_exchange_account", x.to_exchange_account},
            {"debited", x.debited},
            {"gross", x.gross},
            {"fee", x.fee},
            {"credited", x.credited},
            {"day", x.day},
            {"step", to_string(x.step)},
            {"started_at", x.started_at},
            {"updated_at", x.updated_at},
            {"position", x.position}};
  if (x.step != ExchangeStep::started) {
    j["commit"] = x.commit;
    j["result"] = to_string(x.result);
    if (x.result == ExchangeResult::leg_failed) {
      j["leg"] = x.leg;
      j["leg_result"] = to_string(x.leg_result);
    }
  }
  return j;
}

json order_json(const OrderInfo& o) {
  const Order& r = o.request;
  json j = {{"id", r.id},
            {"member_account", r.member_account},
            {"merchant_account", r.merchant_account},
            {"points", r.points},
            {"cash", {{"amount", r.cash.amount}, {"currency", r.cash.currency}}},
            {"timeout_s", o.timeout_s},
            {"ledger", o.ledger},
            {"deadline", o.deadline},
            {"status", to_string(o.status)},
            {"step", to_string(o.step)},
            {"created_at", o.created_at},
            {"updated_at", o.updated_at},
            {"position", o.position}};
  if (r.cash.amount != 0) {
    j["payment"] = {
        {"provider", o.provider}, {"payment_id", o.payment_id}, {"reference", o.payment_reference}};
    if (o.payment_status) j["payment"]["status"] = to_string(*o.payment_status);
  }
  if (o.status == OrderStatus::failed) {
    j["failure"] = to_string(o.failure);
    // The reason in one word: the transfer result when the points could not be reserved.
    j["reason"] = o.failure == OrderFailure::reservation_refused ? to_string(o.reservation_result)
                                                                 : to_string(o.failure);
    if (!o.payment_error.empty()) j["payment_error"] = o.payment_error;
  }
  if (o.refund_due) j["refund_due"] = true;
  json steps = json::array();
  for (const OrderInfo::StepTime& s : o.steps) {
    json step = {{"step", to_string(s.step)}, {"timestamp", s.timestamp}};
    if (s.late_status) step["status"] = to_string(*s.late_status);
    steps.push_back(std::move(step));
  }
  j["steps"] = std::move(steps);
  return j;
}

json rules_json(const EarningRules& r) {
  json categories = json::array();
  for (const CategoryRate& c : r.categories) {
    categories.push_back({{"category", c.category}, {"rate_bps", c.rate_bps}});
  }
  json campaigns = json::array();
  for (const Campaign& c : r.campaigns) {
    campaigns.push_back({{"starts_at", c.starts_at},
                         {"ends_at", c.ends_at},
                         {"multiplier_bps", c.multiplier_bps},
                         {"categories", c.categories}});
  }
  return {{"ledger", r.ledger},
          {"issuer_account", r.issuer_account},
          {"expiry_account", r.expiry_account},
          {"currency", r.currency},
          {"categories", std::move(categories)},
          {"min_purchase", r.min_purchase},
          {"cap_per_order", r.cap_per_order},
          {"cap_per_member_day", r.cap_per_member_day},
          {"return_window_s", r.return_window_s},
          {"campaigns", std::move(campaigns)},
          {"timestamp", r.timestamp}};
}

json check_back_json(const CheckBackInfo& c) {
  const Transfer& t = c.request.transfer;
  json checks = json::array();
  for (const CheckRecord& r : c.checks) {
    json one = {
        {"attempt", r.attempt}, {"answer", to_string(r.answer)}, {"timestamp", r.timestamp}};
    if (!r.detail.empty()) one["detail"] = r.detail;
    checks.push_back(std::move(one));
  }
  json j = {{"id", t.id},
            {"transfer",
             {{"id", t.id},
              {"debit_account", t.debit_account},
              {"credit_account", t.credit_account},
              {"amount", t.amount},
              {"ledger", t.ledger},
              {"code", t.code},
              {"flags", transfer_flags_json(t.flags)},
              {"user_data", t.user_data}}},
            {"url", c.request.url},
            {"check_after_s", c.request.check_after_s},
            {"checks_max", c.request.checks_max},
            {"status", to_string(c.status)},
            {"checks", std::move(checks)},
            {"settled", c.settled},
            {"created_at", c.created_at},
            {"updated_at", c.updated_at},
            {"position", c.position}};
  if (c.next_check_at != 0) j["next_check_at"] = c.next_check_at;
  if (c.status == CheckBackStatus::committed || c.status == CheckBackStatus::rolled_back) {
    j["by_client"] = c.by_client;
  }
  if (c.status == CheckBackStatus::failed) j["reason"] = to_string(c.transfer_result);
  if (!c.note.empty()) j["note"] = c.note;
  return j;
}

json purchase_json(const PurchaseInfo& p) {
  const Purchase& r = p.request;
  json refunds = json::array();
  for (const RefundInfo& x : p.refunds) {
    json one = {{"id", x.id}, {"amount", x.amount}, {"timestamp", x.timestamp}};
    if (x.clawback) {
      one["clawback"] = {{"points", x.clawback_points},
                         {"clawed_back", x.clawed_back},
                         {"shortfall", x.shortfall},
                         {"transfer_id", x.clawback_transfer_id},
                         {"done", x.done}};
    } else {
      one["points_reduced"] = x.points_reduced;
    }
    refunds.push_back(std::move(one));
  }
  json j = {{"id", r.id},
            {"member_account", r.member_account},
            {"amount", r.amount},
            {"currency", r.currency},
            {"category", r.category},
            {"ledger", p.ledger},
            {"issuer_account", p.issuer_account},
            {"rate_bps", p.rate_bps},
            {"multiplier_bps", p.multiplier_bps},
            {"points_earned", p.points_earned},
            {"points", p.points},
            {"points_due", p.points_due},
            {"points_posted", p.points_posted},
            {"window_ends_at", p.window_ends_at},
            {"status", to_string(p.status)},
            {"refunded_amount", p.refunded_amount},
            {"clawed_back", p.clawed_back},
            {"shortfall", p.shortfall},
            {"refunds", std::move(refunds)},
            {"settled", p.settled},
            {"created_at", p.created_at},
            {"updated_at", p.updated_at},
            {"position", p.position}};
  if (p.status == PurchaseStatus::failed) j["reason"] = to_string(p.credit_result);
  return j;
}

json account_json(const Account& a) {
  json j = {{"id", a.spec.id},
            {"ledger", a.spec.ledger},
            {"kind", to_string(a.spec.kind)},
            {"owner", a.spec.owner},
            {"flags", account_flags_json(a.spec.flags)},
            {"user_data", a.spec.user_data},
            {"timestamp", a.timestamp}};
  j.update(balances_json(a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending));
  // The read model's lots, oldest first (docs/expiry.md); [] for accounts without lots.
  json expiring = json::array();
  for (const ExpiringLot& lot : a.expiring) {
    expiring.push_back({{"amount", lot.amount}, {"at", lot.at}});
  }
  j["expiring"] = std::move(expiring);
  return j;
}

json transfer_json(const TransferInfo& t) {
  return {{"id", t.request.id},
          {"debit_account", t.debit_account},
          {"credit_account", t.credit_account},
          {"amount", t.amount},
          {"ledger", t.ledger},
          {"code", t.code},
          {"flags", transfer_flags_json(t.request.flags)},
          {"pending_id", t.request.pending_id},
          {"timeout_s", t.request.timeout_s},
          {"user_data", t.request.user_data},
          {"state", to_string(t.state)},
          {"expires_at", t.expires_at},
          {"timestamp", t.timestamp},
          {"position", t.position}};
}

json history_transfer_json(const AccountEvent& e) {
  json j = transfer_json(e.transfer);
  j["event"] = {{"kind", to_string(e.kind)},
                {"amount", e.amount},
                {"timestamp", e.timestamp},
                {"position", e.position}};
  return j;
}

json history_balance_json(const AccountEvent& e) {
  json j = {{"transfer_id", e.transfer.request.id},
            {"kind", to_string(e.kind)},
            {"timestamp", e.timestamp},
            {"position", e.position}};
  j.update(balances_json(e.debits_posted, e.credits_posted, e.debits_pending, e.credits_pending));
  return j;
}

json event_json(const FeedEvent& e) {
  json j = {{"position", e.position}, {"type", to_string(e.type)}, {"timestamp", e.timestamp}};
  switch (e.type) {
    case FeedEvent::Type::ledger_created:
      j["ledger"] = ledger_json(e.ledger);
      break;
    case FeedEvent::Type::account_created:
      j["account"] = {{"id", e.account.id},
                      {"ledger", e.account.ledger},
                      {"kind", to_string(e.account.kind)},
                      {"owner", e.account.owner},
                      {"flags", account_flags_json(e.account.flags)},
                      {"user_data", e.account.user_data}};
      {
        json created = {{"account", e.account.id}};
        created.update(balances_json(0, 0, 0, 0));
        j["balances"] = json::array({std::move(created)});
      }
      break;
    case FeedEvent::Type::account_closed:
      j["account"] = {{"id", e.account.id}, {"ledger", e.account.ledger}};
      break;
    case FeedEvent::Type::transfer: {
      j["kind"] = to_string(e.kind);
      j["transfer"] = transfer_json(e.transfer);
      json debit = {{"account", e.debit.account}};
      debit.update(balances_json(e.debit.debits_posted, e.debit.credits_posted,
                                 e.debit.debits_pending, e.debit.credits_pending));
      json credit = {{"account", e.credit.account}};
      credit.update(balances_json(e.credit.debits_posted, e.credit.credits_posted,
                                  e.credit.debits_pending, e.credit.credits_pending));
      j["balances"] = json::array({std::move(debit), std::move(credit)});
      break;
    }
  }
  return j;
}

bool map_subscription(const json& j, WebhookSpec* out, bool* secret_given, ApiError* err) {
  Fields f(j, -1, err);
  WebhookSpec spec;
  if (!f.only({"url", "events", "secret"}) ||
      !f.string("url", &spec.url, webhook_url_bytes_max, true) ||
      !f.string("secret", &spec.secret, webhook_secret_bytes_max, false)) {
    return false;
  }
  std::string host;
  std::uint16_t port = 0;
  std::string target;
  if (!domain::parse_http_url(spec.url, &host, &port, &target)) {
    return f.fail("url", "invalid_field", "expected http://host[:port][/path] (no https)");
  }
  *secret_given = f.has("secret");
  if (*secret_given && spec.secret.size() < webhook_secret_bytes_min) {
    return f.fail("secret", "invalid_field",
                  "at least " + std::to_string(webhook_secret_bytes_min) + " bytes");
  }
  if (!f.has("events")) return f.fail("events", "missing_field", "required");
  const auto event_bit = [](const std::string& name) -> std::uint32_t {
    for (std::uint8_t t = 0; t <= static_cast<std::uint8_t>(FeedEvent::Type::transfer); ++t) {
      const auto type = static_cast<FeedEvent::Type>(t);
      if (to_string(type) == name) return webhook_events::bit(type);
    }
    return 0;
  };
  if (!f.flags("events", &spec.events, event_bit)) return false;
  if (spec.events == 0) {
    return f.fail("events", "invalid_field",
                  "at least one of ledger_created, account_created, account_closed, transfer");
  }
  *out = std::move(spec);
  return true;
}

json subscription_json(const Webhook& w, bool with_secret) {
  json events = json::array();
  for (std::uint8_t t = 0; t <= static_cast<std::uint8_t>(FeedEvent::Type::transfer); ++t) {
    const auto type = static_cast<FeedEvent::Type>(t);
    if ((w.spec.events & webhook_events::bit(type)) != 0) events.push_back(to_string(type));
  }
  json j = {{"id", w.id},
            {"url", w.spec.url},
            {"events", std::move(events)},
            {"ledgers", w.spec.ledgers},
            {"timestamp", w.timestamp},
            {"cursor", w.cursor},
            {"dead_letters", w.dead_letters}};
  if (with_secret) j["secret"] = w.spec.secret;
  return j;
}

json dead_letter_json(const DeadLetter& d) {
  return {{"position", d.position},
          {"attempts", d.attempts},
          {"last_status", d.last_status},
          {"timestamp", d.timestamp}};
}

}  // namespace pointex::server
