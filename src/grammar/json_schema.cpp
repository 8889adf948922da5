#include "grammar/json_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "grammar/json_schema_regex.h"

namespace loom::grammar {

namespace {

using schema_regex::any_encoded_char;
using schema_regex::decimal_bound;
using schema_regex::decode_utf8;
using schema_regex::digits1;
using schema_regex::encode;
using schema_regex::format_regex;
using schema_regex::integer_range;
using schema_regex::integer_regex;
using schema_regex::naturals;
using schema_regex::number_regex;
using schema_regex::quoted;
using json = nlohmann::ordered_json;
using Conj = std::vector<const json*>;  // a conjunction of schema nodes; empty: any value

enum TypeBit : uint8_t {
  kNull = 1,
  kBool = 2,
  kObject = 4,
  kArray = 8,
  kString = 16,
  kInteger = 32,   // integer numbers
  kFraction = 64,  // numbers that are not integers
};
constexpr uint8_t kAllTypes = 127;

[[noreturn]] void unsupported(const std::string& where, std::string_view keyword,
                              std::string_view why) {
  fail(ErrorCode::kUnsupported, "JSON schema at {}: '{}' {}", where, keyword, why);
}

[[noreturn]] void invalid(const std::string& where, std::string_view what) {
  fail(ErrorCode::kInvalidArgument, "JSON schema at {}: {}", where, what);
}

std::string pointer_escape(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

struct Plan {
  uint8_t types = kAllTypes;
  std::optional<std::vector<json>> enums;
  std::optional<double> minimum, maximum;
  int64_t multiple_of = 0;  // whole-number multipleOf (0: none)
  bool excl_min = false, excl_max = false;
  int64_t min_len = 0, max_len = -1;
  std::vector<Regex> patterns;  // decoded, whole-string (search semantics applied)
  std::vector<std::pair<std::string, Conj>> props;
  std::vector<std::string> required;
  std::vector<std::pair<Regex, Conj>> pattern_props;
  std::optional<Conj> additional;  // nullopt: any value
  bool additional_false = false;
  std::vector<Conj> prefix;
  std::optional<Conj> items;  // nullopt: any value
  bool items_false = false;
  int64_t min_items = 0, max_items = -1;
  int64_t min_props = 0, max_props = -1;
  // Exclusions (from not, oneOf, dependencies, if/else): keys an object may not have, string
  // patterns and literal values a value may not match; key_patterns every key must match.
  std::vector<std::string> forbidden;
  std::vector<Regex> not_patterns;  // decoded, whole-string
  std::vector<json> not_values;     // strings, booleans, null
  std::vector<Regex> key_patterns;  // propertyNames, decoded, whole-string
  std::string where;
};

bool json_equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

class Compiler {
 public:
  Compiler(const json& root, const JsonSchemaOptions& o,
           std::shared_ptr<Grammar> g = std::make_shared<Grammar>())
      : root_(root), o_(o), g_(std::move(g)) {
    note_where(&root_, "#");
    ws_opt_ = g_->add_rule("ws?");
    g_->add_production(ws_opt_, {});
    if (!o_.compact) {
      g_->add_production(
          ws_opt_,
          {lex(o_.whitespace
                   ? o_.whitespace
                   : re_plus(re_class({{' ', ' '}, {'\t', '\t'}, {'\n', '\n'}, {'\r', '\r'}})))});
    }
  }

  // The rule of the root schema's values, in g_ (not finalized).
  int32_t value_rule() { return conj_rule({&root_}, "#"); }
  int32_t ws_rule() const { return ws_opt_; }

  std::shared_ptr<Grammar> run(bool object_only = false) {
    int32_t v;
    if (object_only) {
      Plan p;
      p.types = kObject;
      p.where = "#";
      v = plan_rule(p);
    } else {
      v = conj_rule({&root_}, "#");
    }
    const int32_t start = g_->add_rule("json");
    g_->add_production(start, {ws_opt_, v, ws_opt_});
    g_->set_start(start);
    g_->finalize();
    return g_;
  }

 private:
  int32_t lex(const LexemeSpec& spec) { return Grammar::lexeme(g_->add_lexeme(spec)); }
  int32_t lit(std::string_view text) { return lex(re_literal(text)); }

  void count_production() {
    if (++productions_ > 2'000'000) {
      fail(ErrorCode::kOutOfRange, "JSON schema: the grammar passes 2,000,000 productions");
    }
    if ((productions_ & 255) == 0) check_deadline();
  }
  void check_deadline() const {
    if (o_.deadline && std::chrono::steady_clock::now() > *o_.deadline) {
      fail(ErrorCode::kOutOfRange, "JSON schema: compile time limit reached");
    }
  }
  void add(int32_t rule, std::vector<int32_t> rhs) {
    count_production();
    g_->add_production(rule, std::move(rhs));
  }

  // --- $ref ------------------------------------------------------------------------------------
  const json* resolve(const std::string& ref, const std::string& where) {
    if (ref.empty() || ref[0] != '#') {
      unsupported(where, "$ref", fmt::format("'{}' points outside the document", ref));
    }
    if (ref.size() > 1 && ref[1] != '/') {  // "#anchor"
      const json* found = find_anchor(root_, ref.substr(1));
      if (found == nullptr) invalid(where, fmt::format("$ref '{}' points nowhere", ref));
      return found;
    }
    const json* cur = &root_;
    size_t pos = 2;
    while (pos <= ref.size() && ref.size() > 1) {
      size_t end = ref.find('/', pos);
      if (end == std::string::npos) end = ref.size();
      std::string token;
      for (size_t i = pos; i < end; ++i) {
        if (ref[i] == '~' && i + 1 < end) {
          token += ref[i + 1] == '1' ? '/' : '~';
          ++i;
        } else if (ref[i] == '%' && i + 2 < end &&
                   std::isxdigit(static_cast<unsigned char>(ref[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(ref[i + 2]))) {
          token += static_cast<char>(std::stoi(ref.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          token += ref[i];
        }
      }
      if (cur->is_object() && cur->contains(token)) {
        cur = &(*cur)[token];
      } else if (cur->is_array() && !token.empty() &&
                 std::all_of(token.begin(), token.end(),
                             [](char c) { return c >= '0' && c <= '9'; }) &&
                 std::stoull(token) < cur->size()) {
        cur = &(*cur)[std::stoull(token)];
      } else {
        invalid(where, fmt::format("$ref '{}' points nowhere", ref));
      }
      pos = end + 1;
    }
    return cur;
  }

  const json* find_anchor(const json& node, const std::string& name, int depth = 0) {
    if (depth > 200) return nullptr;
    if (node.is_object()) {
      for (const char* key : {"$anchor", "$id", "id"}) {
        auto it = node.find(key);
        if (it != node.end() && it->is_string()) {
          const std::string& v = it->get_ref<const std::string&>();
          if (v == name || v == "#" + name) return &node;
        }
      }
      for (const auto& [k, v] : node.items()) {
        if (const json* f = find_anchor(v, name, depth + 1)) return f;
      }
    } else if (node.is_array()) {
      for (const auto& v : node) {
        if (const json* f = find_anchor(v, name, depth + 1)) return f;
      }
    }
    return nullptr;
  }

  // --- Schema nodes -> plans ---------------------------------------------------------------------

  std::string where_of(const json* node) {
    auto it = where_.find(node);
    return it != where_.end() ? it->second : std::string("#");
  }
  void note_where(const json* node, const std::string& where) { where_.emplace(node, where); }

  // The alternatives a conjunction of nodes allows (disjunctive normal form).
  std::vector<Plan> expand_conj(const Conj& conj, int depth) {
    std::vector<Plan> alts(1);
    alts[0].where = conj.empty() ? "#" : where_of(conj.front());
    for (const json* n : conj) alts = cross(alts, expand(n, depth), where_of(n));
    return alts;
  }

  std::vector<Plan> cross(const std::vector<Plan>& a, const std::vector<Plan>& b,
                          const std::string& where) {
    std::vector<Plan> out;
    for (const Plan& x : a) {
      for (const Plan& y : b) {
        if (auto m = merge(x, y)) out.push_back(std::move(*m));
        if (out.size() > 512) {
          unsupported(where, "allOf/anyOf", "expands to more than 512 alternatives");
        }
      }
    }
    return out;
  }

  std::vector<Plan> expand(const json* node, int depth) {
    const std::string where = where_of(node);
    if (depth > o_.max_depth) {
      fail(ErrorCode::kOutOfRange, "JSON schema at {}: nests deeper than {} levels", where,
           o_.max_depth);
    }
    if (node->is_boolean()) {
      if (node->get<bool>()) return {Plan{}};
      return {};
    }
    check_deadline();
    if (!node->is_object()) invalid(where, "a schema must be an object or a boolean");
    if (std::find(expanding_.begin(), expanding_.end(), node) != expanding_.end()) {
      unsupported(where, "$ref/allOf",
                  "refers back to itself without an object or array in between");
    }
    expanding_.push_back(node);
    struct Pop {
      std::vector<const json*>& v;
      ~Pop() { v.pop_back(); }
    } pop{expanding_};

    Plan base = collect(*node, where);
    std::vector<Plan> alts = {base};
    if (auto it = node->find("$ref"); it != node->end()) {
      if (!it->is_string()) invalid(where + "/$ref", "$ref must be a string");
      const json* target = resolve(it->get<std::string>(), where);
      note_where(target, it->get<std::string>());
      alts = cross(alts, expand(target, depth + 1), where);
    }
    if (auto it = node->find("allOf"); it != node->end()) {
      if (!it->is_array()) invalid(where + "/allOf", "allOf must be an array");
      for (size_t i = 0; i < it->size(); ++i) {
        const json* sub = &(*it)[i];
        note_where(sub, fmt::format("{}/allOf/{}", where, i));
        alts = cross(alts, expand(sub, depth + 1), where);
      }
    }
    if (auto it = node->find("anyOf"); it != node->end()) {
      if (!it->is_array() || it->empty())
        invalid(where + "/anyOf", "anyOf must be a non-empty array");
      std::vector<Plan> unioned;
      for (size_t i = 0; i < it->size(); ++i) {
        const json* sub = &(*it)[i];
        note_where(sub, fmt::format("{}/anyOf/{}", where, i));
        for (Plan& p : cross(alts, expand(sub, depth + 1), where)) unioned.push_back(std::move(p));
        if (unioned.size() > 512)
          unsupported(where, "anyOf", "expands to more than 512 alternatives");
      }
      alts = std::move(unioned);
    }
    if (auto it = node->find("oneOf"); it != node->end()) {
      if (!it->is_array() || it->empty())
        invalid(where + "/oneOf", "oneOf must be a non-empty array");
      alts = one_of(alts, *it, where, depth);
    }
    if (auto it = node->find("not"); it != node->end()) {
      note_where(&*it, where + "/not");
      alts = cross(alts, negate(&*it, depth + 1), where);
    }
    if (auto it = node->find("if"); it != node->end()) {
      // (if and then) or (not if and else): exact when `if` can be negated.
      note_where(&*it, where + "/if");
      static const json kTrue = true;
      const json* then_s = node->contains("then") ? &(*node)["then"] : &kTrue;
      const json* else_s = node->contains("else") ? &(*node)["else"] : &kTrue;
      note_where(then_s, where + "/then");
      note_where(else_s, where + "/else");
      std::vector<Plan> yes =
          cross(cross(alts, expand(&*it, depth + 1), where), expand(then_s, depth + 1), where);
      std::vector<Plan> no =
          cross(cross(alts, negate(&*it, depth + 1), where), expand(else_s, depth + 1), where);
      for (Plan& p : no) yes.push_back(std::move(p));
      alts = std::move(yes);
    }
    for (const char* key : {"dependencies", "dependentRequired", "dependentSchemas"}) {
      auto it = node->find(key);
      if (it == node->end() || !it->is_object()) continue;
      // Property k present requires more: (not an object) or (k absent) or (k and the rest).
      for (const auto& [k, dep] : it->items()) {
        Plan non_objects;
        non_objects.where = where;
        non_objects.types = kAllTypes & static_cast<uint8_t>(~kObject);
        Plan absent;
        absent.where = where;
        absent.types = kObject;
        absent.forbidden.push_back(k);
        Plan present;
        present.where = where;
        present.types = kObject;
        present.required.push_back(k);
        std::vector<Plan> options = {non_objects, absent};
        if (dep.is_array()) {
          for (const json& r : dep) {
            if (r.is_string()) present.required.push_back(r.get<std::string>());
          }
          options.push_back(present);
        } else {
          note_where(&dep, where + "/" + key + "/" + pointer_escape(k));
          for (Plan& p : cross({present}, expand(&dep, depth + 1), where))
            options.push_back(std::move(p));
        }
        alts = cross(alts, options, where);
      }
    }
    return alts;
  }

  // oneOf: exactly one branch. Each branch is taken with the negation of every other, which is
  // exact when the others can be negated; otherwise the branches must be provably disjoint.
  std::vector<Plan> one_of(const std::vector<Plan>& alts, const json& list,
                           const std::string& where, int depth) {
    std::vector<std::vector<Plan>> branches;
    for (size_t i = 0; i < list.size(); ++i) {
      note_where(&list[i], fmt::format("{}/oneOf/{}", where, i));
      branches.push_back(expand(&list[i], depth + 1));
    }
    std::vector<Plan> unioned;
    try {
      std::vector<std::vector<Plan>> negated;
      for (size_t i = 0; i < list.size(); ++i) negated.push_back(negate(&list[i], depth + 1));
      for (size_t i = 0; i < list.size(); ++i) {
        std::vector<Plan> only = cross(alts, branches[i], where);
        for (size_t j = 0; j < list.size() && !only.empty(); ++j) {
          if (j != i) only = cross(only, negated[j], where);
        }
        for (Plan& p : only) unioned.push_back(std::move(p));
        if (unioned.size() > 512)
          unsupported(where, "oneOf", "expands to more than 512 alternatives");
      }
      return unioned;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnsupported) throw;
    }
    std::vector<std::vector<Plan>> crossed;
    for (auto& b : branches) crossed.push_back(cross(alts, b, where));
    check_disjoint(crossed, where);
    for (auto& b : crossed) {
      for (Plan& p : b) unioned.push_back(std::move(p));
    }
    if (unioned.size() > 512) unsupported(where, "oneOf", "expands to more than 512 alternatives");
    return unioned;
  }

  const json* synthetic(json j) {
    arena_.push_back(std::move(j));
    return &arena_.back();
  }

  // The values `node` does not accept, as alternatives (kUnsupported when that cannot be said
  // exactly). A schema is the conjunction of its keywords, so its negation is the union of the
  // keywords' negations (De Morgan); each keyword only constrains its own type.
  std::vector<Plan> negate(const json* node, int depth) {
    const std::string where = where_of(node);
    if (depth > o_.max_depth) {
      fail(ErrorCode::kOutOfRange, "JSON schema at {}: nests deeper than {} levels", where,
           o_.max_depth);
    }
    if (node->is_boolean()) {
      if (node->get<bool>()) return {};
      Plan any;
      any.where = where;
      return {any};
    }
    if (!node->is_object()) invalid(where, "a schema must be an object or a boolean");
    std::vector<Plan> out;
    auto plan = [&](uint8_t types) {
      Plan p;
      p.where = where;
      p.types = types;
      return p;
    };
    const Plan c = collect_lenient(*node, where);
    constexpr uint8_t kNumbers = kInteger | kFraction;
    for (const auto& [key, v] : node->items()) {
      if (!constraining(key) || key == "nullable" || key == "then" || key == "else") continue;
      if (key == "type") {
        out.push_back(plan(kAllTypes & static_cast<uint8_t>(~c.types)));
      } else if (key == "enum" || key == "const") {
        if (key == "enum" && node->contains("const")) continue;  // handled once, intersected
        Plan p = plan(kAllTypes);
        std::vector<double> numbers;
        for (const json& x : *c.enums) {
          if (x.is_object() || x.is_array()) {
            unsupported(where, key, "with object or array values inside 'not' is not supported");
          }
          if (x.is_number()) {
            const double d = x.get<double>();
            if (d != std::floor(d) || std::abs(d) >= 9e15) {
              unsupported(where, key,
                          "with a fractional or huge number inside 'not' is not supported");
            }
            numbers.push_back(d);
          } else {
            p.not_values.push_back(x);
          }
        }
        if (!numbers.empty()) {
          // Numbers other than v1 < ... < vk: the open intervals between them.
          p.types &= static_cast<uint8_t>(~kNumbers);
          std::sort(numbers.begin(), numbers.end());
          numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
          for (size_t i = 0; i <= numbers.size(); ++i) {
            Plan q = plan(kNumbers);
            if (i > 0) {
              q.minimum = numbers[i - 1];
              q.excl_min = true;
            }
            if (i < numbers.size()) {
              q.maximum = numbers[i];
              q.excl_max = true;
            }
            out.push_back(std::move(q));
          }
        }
        out.push_back(std::move(p));
      } else if (key == "required") {
        for (const std::string& k : c.required) {
          Plan p = plan(kObject);
          p.forbidden.push_back(k);
          out.push_back(std::move(p));
        }
      } else if (key == "pattern" || key == "format") {
        if (!v.is_string()) continue;
        std::optional<Regex> r;
        if (key == "pattern") {
          r = parse_ecma_pattern(v.get<std::string>());
        } else {
          r = format_regex(v.get<std::string>());
        }
        if (!r) continue;
        Plan p = plan(kString);
        p.not_patterns.push_back(*r);
        out.push_back(std::move(p));
      } else if (key == "minLength") {
        if (c.min_len > 0) {
          Plan p = plan(kString);
          p.max_len = c.min_len - 1;
          out.push_back(std::move(p));
        }
      } else if (key == "maxLength") {
        Plan p = plan(kString);
        p.min_len = c.max_len + 1;
        out.push_back(std::move(p));
      } else if (key == "minimum" || key == "exclusiveMinimum") {
        if (v.is_boolean() || (key == "minimum" && node->contains("exclusiveMinimum") &&
                               !(*node)["exclusiveMinimum"].is_boolean())) {
          continue;  // folded into the other keyword (the tighter bound is c.minimum)
        }
        if (!c.minimum) continue;
        Plan p = plan(kNumbers);
        p.maximum = c.minimum;
        p.excl_max = !c.excl_min;
        out.push_back(std::move(p));
      } else if (key == "maximum" || key == "exclusiveMaximum") {
        if (v.is_boolean() || (key == "maximum" && node->contains("exclusiveMaximum") &&
                               !(*node)["exclusiveMaximum"].is_boolean())) {
          continue;
        }
        if (!c.maximum) continue;
        Plan p = plan(kNumbers);
        p.minimum = c.maximum;
        p.excl_min = !c.excl_max;
        out.push_back(std::move(p));
      } else if (key == "minItems") {
        if (c.min_items > 0) {
          Plan p = plan(kArray);
          p.max_items = c.min_items - 1;
          out.push_back(std::move(p));
        }
      } else if (key == "maxItems") {
        Plan p = plan(kArray);
        p.min_items = c.max_items + 1;
        out.push_back(std::move(p));
      } else if (key == "properties") {
        // Some declared property present and failing its schema.
        for (const auto& [k, sub] : v.items()) {
          Plan p = plan(kObject);
          p.required.push_back(k);
          const json* neg = synthetic(json{{"not", sub}});
          note_where(neg, where + "/properties/" + pointer_escape(k) + "/not");
          p.props.push_back({k, {neg}});
          out.push_back(std::move(p));
        }
      } else if (key == "not") {
        note_where(&v, where + "/not");
        for (Plan& p : expand(&v, depth + 1)) out.push_back(std::move(p));
      } else if (key == "allOf") {
        for (size_t i = 0; i < v.size(); ++i) {
          note_where(&v[i], fmt::format("{}/allOf/{}", where, i));
          for (Plan& p : negate(&v[i], depth + 1)) out.push_back(std::move(p));
        }
      } else if (key == "anyOf") {
        std::vector<Plan> all(1);
        all[0].where = where;
        for (size_t i = 0; i < v.size(); ++i) {
          note_where(&v[i], fmt::format("{}/anyOf/{}", where, i));
          all = cross(all, negate(&v[i], depth + 1), where);
        }
        for (Plan& p : all) out.push_back(std::move(p));
      } else if (key == "$ref") {
        if (!v.is_string()) invalid(where + "/$ref", "$ref must be a string");
        const json* target = resolve(v.get<std::string>(), where);
        note_where(target, v.get<std::string>());
        if (std::find(negating_.begin(), negating_.end(), target) != negating_.end()) {
          unsupported(where, "not", "of a recursive $ref is not supported");
        }
        negating_.push_back(target);
        struct Pop {
          std::vector<const json*>& v;
          ~Pop() { v.pop_back(); }
        } pop{negating_};
        for (Plan& p : negate(target, depth + 1)) out.push_back(std::move(p));
      } else if (key == "additionalProperties" && v.is_boolean() && v.get<bool>()) {
        continue;
      } else {
        unsupported(where, key, "inside 'not' (or a negated oneOf/if branch) is not supported");
      }
      if (out.size() > 512) unsupported(where, "not", "expands to more than 512 alternatives");
    }
    return out;
  }

  // collect() over the keywords negate() reads (negate() decides what it can handle).
  Plan collect_lenient(const json& s, const std::string& where) {
    json copy = json::object();
    for (const auto& [k, v] : s.items()) {
      if (k == "type" || k == "enum" || k == "const" || k == "required" || k == "minLength" ||
          k == "maxLength" || k == "minimum" || k == "maximum" || k == "exclusiveMinimum" ||
          k == "exclusiveMaximum" || k == "minItems" || k == "maxItems") {
        copy[k] = v;
      }
    }
    return collect(copy, where);
  }

  // oneOf is anyOf when no instance can match two branches; otherwise it is refused.
  void check_disjoint(const std::vector<std::vector<Plan>>& branches, const std::string& where) {
    for (size_t i = 0; i < branches.size(); ++i) {
      for (size_t j = i + 1; j < branches.size(); ++j) {
        for (const Plan& a : branches[i]) {
          for (const Plan& b : branches[j]) {
            if (!disjoint(a, b)) {
              unsupported(where, "oneOf",
                          fmt::format("branches {} and {} may both match one value (exactly one "
                                      "must); loom cannot enforce that",
                                      i, j));
            }
          }
        }
      }
    }
  }

  static uint8_t value_types(const json& v) {
    if (v.is_null()) return kNull;
    if (v.is_boolean()) return kBool;
    if (v.is_object()) return kObject;
    if (v.is_array()) return kArray;
    if (v.is_string()) return kString;
    if (v.is_number_integer() || v.is_number_unsigned()) return kInteger;
    const double d = v.get<double>();
    return d == std::floor(d) && std::isfinite(d) ? kInteger : kFraction;
  }

  // A const/enum value a single node pins a property to, if any.
  std::optional<std::vector<json>> pinned_values(const Conj& conj) {
    for (const json* n : conj) {
      if (!n->is_object()) continue;
      if (auto it = n->find("const"); it != n->end()) return std::vector<json>{*it};
      if (auto it = n->find("enum"); it != n->end() && it->is_array()) {
        return std::vector<json>(it->begin(), it->end());
      }
    }
    return std::nullopt;
  }

  bool disjoint(const Plan& a, const Plan& b) {
    uint8_t ta = a.types, tb = b.types;
    if (a.enums) {
      ta = 0;
      for (const json& v : *a.enums) ta |= value_types(v);
    }
    if (b.enums) {
      tb = 0;
      for (const json& v : *b.enums) tb |= value_types(v);
    }
    if ((ta & tb) == 0) return true;
    if (a.enums && b.enums) {
      for (const json& x : *a.enums) {
        for (const json& y : *b.enums) {
          if (json_equal(x, y)) return false;
        }
      }
      return true;
    }
    // An enum beside a branch without one: disjoint when none of its values passes the other
    // branch's constraints (colour names beside a "#rrggbb" pattern).
    auto enum_misses = [&](const Plan& e, const Plan& other) {
      if (!e.enums || other.enums) return false;
      for (const json& v : *e.enums) {
        if (literal_ok(other, v)) return false;
      }
      return true;
    };
    if (enum_misses(a, b) || enum_misses(b, a)) return true;
    // Both can only be objects: a property both require with disjoint pinned values, or one
    // requires a property the other forbids.
    if ((ta & tb) == kObject) {
      auto prop_of = [](const Plan& p, const std::string& k) -> const Conj* {
        for (const auto& [name, c] : p.props) {
          if (name == k) return &c;
        }
        return nullptr;
      };
      auto requires_key = [](const Plan& p, const std::string& k) {
        return std::find(p.required.begin(), p.required.end(), k) != p.required.end();
      };
      auto forbids = [&](const Plan& p, const std::string& k) {
        return p.additional_false && p.pattern_props.empty() && prop_of(p, k) == nullptr;
      };
      for (const std::string& k : a.required) {
        if (forbids(b, k)) return true;
        if (!requires_key(b, k)) continue;
        const Conj* ca = prop_of(a, k);
        const Conj* cb = prop_of(b, k);
        if (ca == nullptr || cb == nullptr) continue;
        auto va = pinned_values(*ca), vb = pinned_values(*cb);
        if (!va || !vb) continue;
        bool overlap = false;
        for (const json& x : *va) {
          for (const json& y : *vb) overlap = overlap || json_equal(x, y);
        }
        if (!overlap) return true;
      }
      for (const std::string& k : b.required) {
        if (forbids(a, k)) return true;
      }
    }
    return false;
  }

  // Keywords that constrain values (everything else is an annotation and ignored).
  static bool constraining(std::string_view k) {
    static const std::set<std::string, std::less<>> kKeys = {"type",
                                                             "enum",
                                                             "const",
                                                             "minimum",
                                                             "maximum",
                                                             "exclusiveMinimum",
                                                             "exclusiveMaximum",
                                                             "multipleOf",
                                                             "minLength",
                                                             "maxLength",
                                                             "pattern",
                                                             "format",
                                                             "properties",
                                                             "required",
                                                             "additionalProperties",
                                                             "patternProperties",
                                                             "propertyNames",
                                                             "minProperties",
                                                             "maxProperties",
                                                             "dependencies",
                                                             "dependentRequired",
                                                             "dependentSchemas",
                                                             "items",
                                                             "prefixItems",
                                                             "additionalItems",
                                                             "minItems",
                                                             "maxItems",
                                                             "uniqueItems",
                                                             "contains",
                                                             "minContains",
                                                             "maxContains",
                                                             "allOf",
                                                             "anyOf",
                                                             "oneOf",
                                                             "not",
                                                             "if",
                                                             "then",
                                                             "else",
                                                             "$ref",
                                                             "unevaluatedProperties",
                                                             "unevaluatedItems",
                                                             "nullable"};
    return kKeys.count(k) != 0;
  }

  // propertyNames: every key matches the schema, as a regex over the decoded key (keys are
  // strings, so only string keywords apply).
  void property_names(const json& v, const std::string& where, Plan& p) {
    const std::string at = where + "/propertyNames";
    if (v.is_boolean()) {
      if (!v.get<bool>()) p.max_props = 0;
      return;
    }
    if (!v.is_object()) invalid(at, "a schema must be an object or a boolean");
    std::vector<Regex> parts;
    int64_t min_len = 0, max_len = -1;
    for (const auto& [k, x] : v.items()) {
      if (k == "type") {
        if (x != "string")
          unsupported(at, "type", "keys are strings; another type is not supported");
      } else if (k == "pattern") {
        if (!x.is_string()) invalid(at + "/pattern", "pattern must be a string");
        parts.push_back(parse_ecma_pattern(x.get<std::string>()));
      } else if (k == "format") {
        if (!x.is_string()) continue;
        if (auto r = format_regex(x.get<std::string>())) parts.push_back(*r);
      } else if (k == "minLength" || k == "maxLength") {
        if (!x.is_number() || x.get<double>() < 0) {
          invalid(at + "/" + k, fmt::format("'{}' must be a non-negative integer", k));
        }
        const auto n = static_cast<int64_t>(std::min(x.get<double>(), 1e6));
        if (n > o_.max_repeat)
          unsupported(at, k, fmt::format("above {} is not supported", o_.max_repeat));
        (k == "minLength" ? min_len : max_len) = n;
      } else if (k == "enum" || k == "const") {
        std::vector<Regex> alts;
        for (const json& e : k == "const" ? json::array({x}) : x) {
          if (e.is_string()) alts.push_back(re_literal(e.get<std::string>()));
        }
        parts.push_back(re_alt(std::move(alts)));
      } else if (constraining(k) || k == "$ref" || k == "anyOf" || k == "oneOf" || k == "allOf" ||
                 k == "not") {
        unsupported(at, k, "inside propertyNames is not supported");
      }
    }
    if (min_len > 0 || max_len >= 0) parts.push_back(re_repeat(re_any_char(), min_len, max_len));
    for (Regex& r : parts) p.key_patterns.push_back(std::move(r));
  }

  // The node's own keywords (not $ref, allOf, anyOf, oneOf, not, if, dependencies).
  Plan collect(const json& s, const std::string& where) {
    Plan p;
    p.where = where;
    // Handled by expand() (not, if/then/else, dependencies...) or below; these remain.
    static const std::set<std::string, std::less<>> kRefused = {
        "contains", "minContains", "maxContains", "unevaluatedProperties", "unevaluatedItems"};
    for (const auto& [key, value] : s.items()) {
      if (kRefused.count(key) != 0) {
        if (key == "unevaluatedProperties" || key == "unevaluatedItems") {
          if (value.is_boolean() && value.get<bool>()) continue;
        }
        unsupported(where, key, "cannot be expressed as a grammar");
      }
    }
    auto number_of = [&](const char* key) -> std::optional<double> {
      auto it = s.find(key);
      if (it == s.end() || it->is_null()) return std::nullopt;
      if (!it->is_number()) invalid(where + "/" + key, fmt::format("'{}' must be a number", key));
      return it->get<double>();
    };
    auto count_of = [&](const char* key) -> std::optional<int64_t> {
      auto it = s.find(key);
      if (it == s.end() || it->is_null()) return std::nullopt;
      if (!it->is_number() || it->get<double>() < 0) {
        invalid(where + "/" + key, fmt::format("'{}' must be a non-negative integer", key));
      }
      const double d = it->get<double>();
      return d > 9e15 ? int64_t{1} << 53 : static_cast<int64_t>(d);
    };
    if (auto it = s.find("uniqueItems"); it != s.end() && it->is_boolean() && it->get<bool>()) {
      unsupported(where, "uniqueItems", "cannot be expressed as a grammar");
    }
    if (auto n = count_of("minProperties")) p.min_props = *n;
    if (auto n = count_of("maxProperties")) p.max_props = *n;
    if (auto it = s.find("propertyNames"); it != s.end()) property_names(*it, where, p);

    // type
    if (auto it = s.find("type"); it != s.end()) {
      auto bit = [&](const json& t) -> uint8_t {
        if (!t.is_string()) invalid(where + "/type", "a type must be a string");
        const std::string& name = t.get_ref<const std::string&>();
        if (name == "null") return kNull;
        if (name == "boolean") return kBool;
        if (name == "object") return kObject;
        if (name == "array") return kArray;
        if (name == "string") return kString;
        if (name == "integer") return kInteger;
        if (name == "number") return kInteger | kFraction;
        if (name == "any") return kAllTypes;
        invalid(where + "/type", fmt::format("unknown type '{}'", name));
      };
      if (it->is_array()) {
        p.types = 0;
        for (const json& t : *it) p.types |= bit(t);
      } else {
        p.types = bit(*it);
      }
    }
    if (auto it = s.find("nullable");
        it != s.end() && it->is_boolean() && it->get<bool>() && s.find("type") != s.end()) {
      p.types |= kNull;
    }
    if (auto it = s.find("const"); it != s.end()) p.enums = std::vector<json>{*it};
    if (auto it = s.find("enum"); it != s.end()) {
      if (!it->is_array()) invalid(where + "/enum", "enum must be an array");
      std::vector<json> vals(it->begin(), it->end());
      if (p.enums) {
        std::vector<json> both;
        for (const json& v : vals) {
          if (json_equal(v, (*p.enums)[0])) both.push_back(v);
        }
        vals = std::move(both);
      }
      p.enums = std::move(vals);
    }
    // numbers
    if (auto it = s.find("multipleOf"); it != s.end() && !it->is_null()) {
      if (!it->is_number() || !(it->get<double>() > 0)) {
        invalid(where + "/multipleOf", "multipleOf must be a number above 0");
      }
      const double k = it->get<double>();
      // A fraction (0.01) is refused: validators divide doubles (0.07 / 0.01 is not whole), so
      // no decimal rule agrees with them exactly.
      if (k != std::floor(k)) {
        unsupported(where, "multipleOf", "that is not a whole number is not supported");
      }
      if (k > static_cast<double>(kMaxMultiple)) {
        unsupported(where, "multipleOf", fmt::format("above {} is not supported", kMaxMultiple));
      }
      p.multiple_of = static_cast<int64_t>(k);
    }
    p.minimum = number_of("minimum");
    p.maximum = number_of("maximum");
    for (const char* key : {"exclusiveMinimum", "exclusiveMaximum"}) {
      auto it = s.find(key);
      if (it == s.end() || it->is_null()) continue;
      const bool min = std::string_view(key) == "exclusiveMinimum";
      if (it->is_boolean()) {  // draft 4: a flag on minimum/maximum
        (min ? p.excl_min : p.excl_max) = it->get<bool>();
      } else if (it->is_number()) {
        const double v = it->get<double>();
        auto& bound = min ? p.minimum : p.maximum;
        bool& excl = min ? p.excl_min : p.excl_max;
        if (!bound || (min ? v >= *bound : v <= *bound)) {
          bound = v;
          excl = true;
        }
      } else {
        invalid(where + "/" + key, fmt::format("'{}' must be a number", key));
      }
    }
    // strings
    if (auto n = count_of("minLength")) p.min_len = *n;
    if (auto n = count_of("maxLength")) p.max_len = *n;
    if (auto it = s.find("pattern"); it != s.end()) {
      if (!it->is_string()) invalid(where + "/pattern", "pattern must be a string");
      try {
        p.patterns.push_back(parse_ecma_pattern(it->get<std::string>()));
      } catch (const Error& e) {
        fail(e.code(), "JSON schema at {}/pattern: {}", where, e.what());
      }
    }
    if (auto it = s.find("format"); it != s.end() && it->is_string()) {
      try {
        if (auto r = format_regex(it->get<std::string>())) p.patterns.push_back(*r);
      } catch (const Error& e) {
        fail(e.code(), "JSON schema at {}/format: {}", where, e.what());
      }
    }
    // objects
    if (auto it = s.find("properties"); it != s.end()) {
      if (!it->is_object()) invalid(where + "/properties", "properties must be an object");
      for (const auto& [k, v] : it->items()) {
        note_where(&v, where + "/properties/" + pointer_escape(k));
        p.props.push_back({k, {&v}});
      }
    }
    if (auto it = s.find("required"); it != s.end()) {
      if (!it->is_array()) invalid(where + "/required", "required must be an array");
      for (const json& r : *it) {
        if (!r.is_string()) invalid(where + "/required", "required names must be strings");
        if (std::find(p.required.begin(), p.required.end(), r.get<std::string>()) ==
            p.required.end()) {
          p.required.push_back(r.get<std::string>());
        }
      }
    }
    if (auto it = s.find("patternProperties"); it != s.end()) {
      if (!it->is_object()) invalid(where + "/patternProperties", "must be an object");
      for (const auto& [k, v] : it->items()) {
        note_where(&v, where + "/patternProperties/" + pointer_escape(k));
        Regex r;
        try {
          r = parse_ecma_pattern(k);
        } catch (const Error& e) {
          fail(e.code(), "JSON schema at {}/patternProperties: {}", where, e.what());
        }
        p.pattern_props.push_back({r, {&v}});
      }
    }
    if (auto it = s.find("additionalProperties"); it != s.end()) {
      if (it->is_boolean()) {
        p.additional_false = !it->get<bool>();
      } else {
        note_where(&*it, where + "/additionalProperties");
        p.additional = Conj{&*it};
      }
    }
    // arrays
    auto items_key = s.find("items");
    if (auto it = s.find("prefixItems"); it != s.end() && it->is_array()) {
      for (size_t i = 0; i < it->size(); ++i) {
        note_where(&(*it)[i], fmt::format("{}/prefixItems/{}", where, i));
        p.prefix.push_back({&(*it)[i]});
      }
    } else if (items_key != s.end() && items_key->is_array()) {  // draft 4 tuples
      for (size_t i = 0; i < items_key->size(); ++i) {
        note_where(&(*items_key)[i], fmt::format("{}/items/{}", where, i));
        p.prefix.push_back({&(*items_key)[i]});
      }
      if (auto ai = s.find("additionalItems"); ai != s.end()) {
        if (ai->is_boolean()) {
          p.items_false = !ai->get<bool>();
        } else {
          note_where(&*ai, where + "/additionalItems");
          p.items = Conj{&*ai};
        }
      }
      items_key = s.end();
    }
    if (items_key != s.end()) {
      if (items_key->is_boolean()) {
        p.items_false = !items_key->get<bool>();
      } else {
        note_where(&*items_key, where + "/items");
        p.items = Conj{&*items_key};
      }
    }
    if (auto n = count_of("minItems")) p.min_items = *n;
    if (auto n = count_of("maxItems")) p.max_items = *n;
    return p;
  }

  // Regex test of a decoded string (compile time only).
  static bool regex_matches(const Regex& r, std::string_view text) {
    if (text.empty()) return regex_nullable(r);
    Lexer lx({re_concat({re_char(1), r})});
    IdSet all(1);
    all.set(0);
    Lexer::State s = lx.next(lx.start(all), 1);
    for (char c : text) s = lx.next(s, static_cast<uint8_t>(c));
    return s != Lexer::kDead && !lx.accepting(s).empty();
  }

  // The schemas a property name `key` must satisfy in `p` beyond `properties`, or nullopt when
  // p forbids it.
  std::optional<Conj> extra_schema_for(const Plan& p, const std::string& key) {
    Conj c;
    bool matched = false;
    for (const auto& [r, conj] : p.pattern_props) {
      if (regex_matches(r, key)) {
        matched = true;
        c.insert(c.end(), conj.begin(), conj.end());
      }
    }
    if (matched) return c;
    if (p.additional_false) return std::nullopt;
    if (p.additional) return *p.additional;
    return Conj{};
  }

  std::optional<Plan> merge(const Plan& a, const Plan& b) {
    Plan m;
    m.where = a.where;
    m.types = a.types & b.types;
    if (a.enums && b.enums) {
      std::vector<json> both;
      for (const json& x : *a.enums) {
        for (const json& y : *b.enums) {
          if (json_equal(x, y)) {
            both.push_back(x);
            break;
          }
        }
      }
      m.enums = std::move(both);
    } else {
      m.enums = a.enums ? a.enums : b.enums;
    }
    // numbers
    auto tighter_min = [](std::optional<double> x, bool xe, std::optional<double> y, bool ye,
                          std::optional<double>& out, bool& oe) {
      if (!x) {
        out = y;
        oe = ye;
      } else if (!y) {
        out = x;
        oe = xe;
      } else if (*x != *y) {
        out = std::max(*x, *y);
        oe = *x > *y ? xe : ye;
      } else {
        out = x;
        oe = xe || ye;
      }
    };
    m.multiple_of = a.multiple_of ? a.multiple_of : b.multiple_of;
    if (a.multiple_of && b.multiple_of) {
      const int64_t l = std::lcm(a.multiple_of, b.multiple_of);
      if (l > kMaxMultiple) {
        unsupported(a.where, "multipleOf",
                    fmt::format("combined above {} is not supported", kMaxMultiple));
      }
      m.multiple_of = l;
    }
    tighter_min(a.minimum, a.excl_min, b.minimum, b.excl_min, m.minimum, m.excl_min);
    {
      std::optional<double> na = a.maximum ? std::optional<double>(-*a.maximum) : std::nullopt;
      std::optional<double> nb = b.maximum ? std::optional<double>(-*b.maximum) : std::nullopt;
      std::optional<double> out;
      tighter_min(na, a.excl_max, nb, b.excl_max, out, m.excl_max);
      if (out) m.maximum = -*out;
    }
    // strings
    m.min_len = std::max(a.min_len, b.min_len);
    m.max_len = a.max_len < 0   ? b.max_len
                : b.max_len < 0 ? a.max_len
                                : std::min(a.max_len, b.max_len);
    m.patterns = a.patterns;
    m.patterns.insert(m.patterns.end(), b.patterns.begin(), b.patterns.end());
    // objects
    if (!a.pattern_props.empty() && !b.pattern_props.empty()) {
      unsupported(a.where, "patternProperties", "on both sides of allOf is not supported");
    }
    m.required = a.required;
    for (const auto& r : b.required) {
      if (std::find(m.required.begin(), m.required.end(), r) == m.required.end())
        m.required.push_back(r);
    }
    bool object_ok = true;
    auto add_prop = [&](const std::string& key, Conj c) {
      for (auto& [k, existing] : m.props) {
        if (k == key) {
          existing.insert(existing.end(), c.begin(), c.end());
          return;
        }
      }
      m.props.push_back({key, std::move(c)});
    };
    // Each side's declared properties: with the other side's schema for the same key (declared,
    // pattern or additional), or gone when the other side forbids the key.
    auto take_props = [&](const Plan& self, const Plan& other) {
      for (const auto& [k, c] : self.props) {
        const bool declared = std::any_of(other.props.begin(), other.props.end(),
                                          [&key = k](const auto& x) { return x.first == key; });
        if (declared) {
          add_prop(k, c);
          continue;
        }
        auto extra = extra_schema_for(other, k);
        if (!extra) {
          if (std::find(m.required.begin(), m.required.end(), k) != m.required.end())
            object_ok = false;
          continue;
        }
        Conj both = c;
        both.insert(both.end(), extra->begin(), extra->end());
        add_prop(k, both);
      }
    };
    take_props(a, b);
    take_props(b, a);
    m.pattern_props = a.pattern_props.empty() ? b.pattern_props : a.pattern_props;
    if (!a.pattern_props.empty() || !b.pattern_props.empty()) {
      // Keys matching one side's patterns must also satisfy the other side's additional schema.
      const Plan& other = a.pattern_props.empty() ? a : b;
      if (other.additional_false) {
        m.pattern_props.clear();
      } else if (other.additional) {
        for (auto& [r, c] : m.pattern_props)
          c.insert(c.end(), other.additional->begin(), other.additional->end());
      }
    }
    m.additional_false = a.additional_false || b.additional_false;
    if (!m.additional_false && (a.additional || b.additional)) {
      Conj c;
      if (a.additional) c.insert(c.end(), a.additional->begin(), a.additional->end());
      if (b.additional) c.insert(c.end(), b.additional->begin(), b.additional->end());
      m.additional = std::move(c);
    }
    if (!object_ok) m.types &= static_cast<uint8_t>(~kObject);
    // arrays
    const size_t n = std::max(a.prefix.size(), b.prefix.size());
    for (size_t i = 0; i < n; ++i) {
      Conj c;
      auto take = [&](const Plan& p) {
        if (i < p.prefix.size()) {
          c.insert(c.end(), p.prefix[i].begin(), p.prefix[i].end());
        } else if (p.items) {
          c.insert(c.end(), p.items->begin(), p.items->end());
        }
      };
      take(a);
      take(b);
      const bool forbidden =
          (i >= a.prefix.size() && a.items_false) || (i >= b.prefix.size() && b.items_false);
      if (forbidden) break;
      m.prefix.push_back(std::move(c));
    }
    m.items_false = a.items_false || b.items_false;
    if (a.items || b.items) {
      Conj c;
      if (a.items) c.insert(c.end(), a.items->begin(), a.items->end());
      if (b.items) c.insert(c.end(), b.items->begin(), b.items->end());
      m.items = std::move(c);
    }
    m.min_props = std::max(a.min_props, b.min_props);
    m.max_props = a.max_props < 0   ? b.max_props
                  : b.max_props < 0 ? a.max_props
                                    : std::min(a.max_props, b.max_props);
    m.forbidden = a.forbidden;
    m.forbidden.insert(m.forbidden.end(), b.forbidden.begin(), b.forbidden.end());
    m.not_patterns = a.not_patterns;
    m.not_patterns.insert(m.not_patterns.end(), b.not_patterns.begin(), b.not_patterns.end());
    m.not_values = a.not_values;
    m.not_values.insert(m.not_values.end(), b.not_values.begin(), b.not_values.end());
    m.key_patterns = a.key_patterns;
    m.key_patterns.insert(m.key_patterns.end(), b.key_patterns.begin(), b.key_patterns.end());
    for (const std::string& k : m.forbidden) {
      if (std::find(m.required.begin(), m.required.end(), k) != m.required.end()) {
        m.types &= static_cast<uint8_t>(~kObject);
      }
    }
    m.min_items = std::max(a.min_items, b.min_items);
    m.max_items = a.max_items < 0   ? b.max_items
                  : b.max_items < 0 ? a.max_items
                                    : std::min(a.max_items, b.max_items);
    if (m.types == 0) return std::nullopt;
    if (m.enums && m.enums->empty()) return std::nullopt;
    return m;
  }

  // --- plans -> rules ------------------------------------------------------------------------

  int32_t conj_rule(const Conj& conj, const std::string& where) {
    std::string key(reinterpret_cast<const char*>(conj.data()), conj.size() * sizeof(const json*));
    if (auto it = conj_rules_.find(key); it != conj_rules_.end()) return it->second;
    const int32_t rule = g_->add_rule(where);
    conj_rules_.emplace(key, rule);
    if (conj.size() == 1) note_where(conj[0], where);
    if (++depth_ > 512) {
      fail(ErrorCode::kOutOfRange, "JSON schema at {}: nests deeper than 512 levels", where);
    }
    for (const Plan& p : expand_conj(conj, 0)) add(rule, {plan_rule(p)});
    --depth_;
    return rule;
  }

  int32_t any_value_rule() {
    if (any_rule_ >= 0) return any_rule_;
    Plan p;
    any_rule_ = g_->add_rule("any");
    const int32_t body = plan_rule(p);
    add(any_rule_, {body});
    return any_rule_;
  }

  int32_t value_rule(const std::optional<Conj>& c, const std::string& where) {
    if (!c || c->empty()) return any_value_rule();
    return conj_rule(*c, where);
  }

  // The JSON text of a literal value, as a rule (objects and arrays with whitespace allowed).
  int32_t literal_rule(const json& v) {
    const int32_t r = g_->add_rule("literal");
    if (v.is_string()) {
      add(r, {lex(quoted(encode(re_literal(v.get<std::string>()))))});
    } else if (v.is_object()) {
      std::vector<int32_t> rhs = {lit("{"), ws_opt_};
      bool first = true;
      for (const auto& [k, x] : v.items()) {
        if (!first) rhs.insert(rhs.end(), {ws_opt_, lit(","), ws_opt_});
        first = false;
        rhs.insert(rhs.end(), {lex(quoted(encode(re_literal(k)))), ws_opt_, lit(":"), ws_opt_,
                               literal_rule(x)});
      }
      rhs.insert(rhs.end(), {ws_opt_, lit("}")});
      add(r, rhs);
    } else if (v.is_array()) {
      std::vector<int32_t> rhs = {lit("["), ws_opt_};
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) rhs.insert(rhs.end(), {ws_opt_, lit(","), ws_opt_});
        rhs.push_back(literal_rule(v[i]));
      }
      rhs.insert(rhs.end(), {ws_opt_, lit("]")});
      add(r, rhs);
    } else {
      add(r, {lit(v.dump())});
    }
    return r;
  }

  // Whether a literal value passes the plan's constraints (its enum and excluded values aside:
  // the caller checks those).
  bool literal_ok(const Plan& p, const json& v) {
    const uint8_t t = value_types(v);
    if ((t & p.types) == 0) return false;
    if (v.is_string()) {
      const std::u32string chars = decode_utf8(v.get_ref<const std::string&>());
      if (static_cast<int64_t>(chars.size()) < p.min_len) return false;
      if (p.max_len >= 0 && static_cast<int64_t>(chars.size()) > p.max_len) return false;
      for (const Regex& r : p.patterns) {
        if (!regex_matches(r, v.get_ref<const std::string&>())) return false;
      }
      for (const Regex& r : p.not_patterns) {
        if (regex_matches(r, v.get_ref<const std::string&>())) return false;
      }
    }
    if (v.is_number()) {
      const double d = v.get<double>();
      if (p.multiple_of > 1 &&
          (d != std::floor(d) || std::fmod(d, static_cast<double>(p.multiple_of)) != 0)) {
        return false;
      }
      if (p.minimum && (p.excl_min ? d <= *p.minimum : d < *p.minimum)) return false;
      if (p.maximum && (p.excl_max ? d >= *p.maximum : d > *p.maximum)) return false;
    }
    if (v.is_object()) {
      const auto n = static_cast<int64_t>(v.size());
      if (n < p.min_props || (p.max_props >= 0 && n > p.max_props)) return false;
      for (const std::string& k : p.required) {
        if (!v.contains(k)) return false;
      }
      for (const auto& [k, x] : v.items()) {
        if (std::find(p.forbidden.begin(), p.forbidden.end(), k) != p.forbidden.end()) {
          return false;
        }
        for (const Regex& r : p.key_patterns) {
          if (!regex_matches(r, k)) return false;
        }
        // properties and patternProperties both apply; additionalProperties to other keys.
        Conj c;
        bool declared = false;
        for (const auto& [name, pc] : p.props) {
          if (name == k) {
            declared = true;
            c.insert(c.end(), pc.begin(), pc.end());
          }
        }
        if (declared) {
          for (const auto& [r, pc] : p.pattern_props) {
            if (regex_matches(r, k)) c.insert(c.end(), pc.begin(), pc.end());
          }
        } else {
          auto extra = extra_schema_for(p, k);
          if (!extra) return false;
          c.insert(c.end(), extra->begin(), extra->end());
        }
        if (!value_ok(c, x)) return false;
      }
    }
    if (v.is_array()) {
      const auto n = static_cast<int64_t>(v.size());
      if (n < p.min_items || (p.max_items >= 0 && n > p.max_items)) return false;
      for (size_t i = 0; i < v.size(); ++i) {
        if (i < p.prefix.size()) {
          if (!value_ok(p.prefix[i], v[i])) return false;
        } else if (p.items_false) {
          return false;
        } else if (p.items && !value_ok(*p.items, v[i])) {
          return false;
        }
      }
    }
    return true;
  }

  // Whether a literal value satisfies a conjunction of schemas (one of its alternatives).
  bool value_ok(const Conj& conj, const json& v) {
    if (conj.empty()) return true;
    if (++depth_ > 512) {
      fail(ErrorCode::kOutOfRange, "JSON schema at {}: nests deeper than 512 levels",
           where_of(conj.front()));
    }
    bool ok = false;
    for (const Plan& p : expand_conj(conj, 0)) {
      const bool excluded = std::any_of(p.not_values.begin(), p.not_values.end(),
                                        [&](const json& x) { return json_equal(x, v); });
      const bool listed = !p.enums || std::any_of(p.enums->begin(), p.enums->end(),
                                                  [&](const json& x) { return json_equal(x, v); });
      if (!excluded && listed && literal_ok(p, v)) {
        ok = true;
        break;
      }
    }
    --depth_;
    return ok;
  }

  int32_t plan_rule(const Plan& p) {
    const int32_t rule = g_->add_rule(p.where);
    auto excluded = [&](const json& v) {
      return std::any_of(p.not_values.begin(), p.not_values.end(),
                         [&](const json& x) { return json_equal(x, v); });
    };
    if (p.enums) {
      for (const json& v : *p.enums) {
        if (!excluded(v) && literal_ok(p, v)) add(rule, {literal_rule(v)});
      }
      return rule;
    }
    if ((p.types & kNull) && !excluded(json(nullptr))) add(rule, {lit("null")});
    if (p.types & kBool) {
      if (!excluded(json(true))) add(rule, {lit("true")});
      if (!excluded(json(false))) add(rule, {lit("false")});
    }
    if (p.types & kString) string_productions(p, rule);
    if (p.types & (kInteger | kFraction)) number_productions(p, rule);
    if (p.types & kArray) array_productions(p, rule);
    if (p.types & kObject) object_productions(p, rule);
    return rule;
  }

  void string_productions(const Plan& p, int32_t rule) {
    if (p.max_len >= 0 && p.max_len < p.min_len) return;
    // A plain length bound is one lexeme component, counted lazily; beside a pattern, format
    // or excluded value the components are intersected and each count is built up front.
    const bool plain = p.patterns.empty() && p.not_patterns.empty() &&
                       std::none_of(p.not_values.begin(), p.not_values.end(),
                                    [](const json& v) { return v.is_string(); });
    const int64_t limit = plain ? o_.max_string_length : o_.max_repeat;
    const char* beside = plain ? "" : " beside a pattern, format or excluded value";
    if (p.min_len > limit) {
      unsupported(p.where, "minLength", fmt::format("above {}{} is not supported", limit, beside));
    }
    if (p.max_len > limit) {
      unsupported(p.where, "maxLength", fmt::format("above {}{} is not supported", limit, beside));
    }
    LexemeSpec spec;
    if (p.min_len > 0 || p.max_len >= 0 || p.patterns.empty()) {
      spec.components.push_back(
          {quoted(re_repeat(any_encoded_char(), p.min_len, p.max_len)), false});
    }
    for (const Regex& r : p.patterns) spec.components.push_back({quoted(encode(r)), false});
    for (const Regex& r : p.not_patterns) spec.components.push_back({quoted(encode(r)), true});
    for (const json& v : p.not_values) {
      if (v.is_string()) {
        spec.components.push_back(
            {quoted(encode(re_literal(v.get_ref<const std::string&>()))), true});
      }
    }
    add(rule, {lex(spec)});
  }

  void number_productions(const Plan& p, int32_t rule) {
    if (p.multiple_of > 1 || (p.multiple_of == 1 && (p.types & kFraction))) {
      // Whole multiples: a remainder automaton (numbers as integers, or with a zero fraction).
      LexemeSpec spec;
      Regex m = re_concat({re_opt(re_char('-')), re_multiple(p.multiple_of)});
      if (p.types & kFraction) {
        m = re_concat({m, re_opt(re_concat({re_char('.'), re_plus(re_char('0'))}))});
      }
      spec.components.push_back({m, false});
      if (p.minimum || p.maximum) {
        Plan bounds = p;
        bounds.multiple_of = 0;
        bounds.types = kInteger;  // the multiples are whole: integer bounds apply
        const int32_t r = g_->add_rule(p.where + "/bounds");
        number_productions(bounds, r);
        for (int32_t prod : g_->rule_productions(r)) {
          const auto& rhs = g_->productions()[prod].rhs;
          if (rhs.size() == 1 && Grammar::is_lexeme(rhs[0])) {
            for (const auto& c : g_->lexemes()[Grammar::lexeme_id(rhs[0])].components) {
              spec.components.push_back(c);
            }
          }
        }
        if (g_->rule_productions(r).empty()) return;  // empty range
        // Integer bounds on a number with a ".0" fraction: widen the bound lexeme to allow it.
        if (p.types & kFraction) {
          for (size_t i = 1; i < spec.components.size(); ++i) {
            spec.components[i].regex =
                re_concat({spec.components[i].regex,
                           re_opt(re_concat({re_char('.'), re_plus(re_char('0'))}))});
          }
        }
      }
      add(rule, {lex(spec)});
      return;
    }
    const bool integers_only = (p.types & kFraction) == 0;
    const bool bounded = p.minimum || p.maximum;
    if (!bounded) {
      add(rule, {lex(integers_only ? integer_regex() : number_regex())});
      return;
    }
    auto as_int = [](double d) { return d == std::floor(d) && std::abs(d) < 9e15; };
    if (integers_only) {
      std::optional<int64_t> lo, hi;
      if (p.minimum) {
        const double m = *p.minimum;
        if (std::abs(m) >= 9e15) unsupported(p.where, "minimum", "beyond 2^53 is not supported");
        lo = static_cast<int64_t>(p.excl_min && as_int(m) ? m + 1 : std::ceil(m));
      }
      if (p.maximum) {
        const double m = *p.maximum;
        if (std::abs(m) >= 9e15) unsupported(p.where, "maximum", "beyond 2^53 is not supported");
        hi = static_cast<int64_t>(p.excl_max && as_int(m) ? m - 1 : std::floor(m));
      }
      if (lo && hi && *lo > *hi) return;
      add(rule, {lex(integer_range(lo, hi))});
      return;
    }
    if ((p.minimum && !as_int(*p.minimum)) || (p.maximum && !as_int(*p.maximum))) {
      // Fractional bounds: decimals (no exponent) compared digit by digit with the bound's
      // shortest text, one component per bound. Inclusive only: reading a decimal as a double
      // is monotonic, so v >= min as decimals implies it as doubles; for an exclusive bound a
      // decimal just below it could read back equal to it.
      if ((p.minimum && p.excl_min && !as_int(*p.minimum)) ||
          (p.maximum && p.excl_max && !as_int(*p.maximum))) {
        unsupported(p.where, p.excl_min ? "exclusiveMinimum" : "exclusiveMaximum",
                    "that is not a whole number is not supported for numbers");
      }
      for (const double b : {p.minimum.value_or(0), p.maximum.value_or(0)}) {
        if (std::abs(b) >= 9e15) {
          unsupported(p.where, "minimum", "beyond 2^53 is not supported");
        }
      }
      if (p.minimum && p.maximum && *p.minimum > *p.maximum) return;
      LexemeSpec spec;
      // An exclusive (whole-number) bound: the inclusive one minus the texts equal to it.
      auto equal_to = [](double b) {
        const Regex zeros = re_opt(re_concat({re_char('.'), re_plus(re_char('0'))}));
        const auto n = static_cast<int64_t>(b);
        return n == 0 ? re_concat({re_opt(re_char('-')), re_char('0'), zeros})
                      : re_concat({re_literal(std::to_string(n)), zeros});
      };
      if (p.minimum) {
        spec.components.push_back({decimal_bound(*p.minimum, true), false});
        if (p.excl_min) spec.components.push_back({equal_to(*p.minimum), true});
      }
      if (p.maximum) {
        spec.components.push_back({decimal_bound(*p.maximum, false), false});
        if (p.excl_max) spec.components.push_back({equal_to(*p.maximum), true});
      }
      add(rule, {lex(spec)});
      return;
    }
    // Decimals (no exponent) between whole-number bounds.
    std::vector<Regex> alts;
    const Regex frac = re_concat({re_char('.'), digits1()});
    const Regex zero_frac = re_concat({re_char('.'), re_plus(re_char('0'))});
    const Regex nonzero_frac = re_concat({re_char('.'), re_star(re_class({{'0', '9'}})),
                                          re_class({{'1', '9'}}), re_star(re_class({{'0', '9'}}))});
    std::optional<int64_t> lo, hi;
    if (p.minimum) lo = static_cast<int64_t>(*p.minimum);
    if (p.maximum) hi = static_cast<int64_t>(*p.maximum);
    if (lo && hi && (*lo > *hi || (*lo == *hi && (p.excl_min || p.excl_max)))) return;
    // Non-negative values I.f (I >= 0): I.f >= lo <=> I >= lo (lo > 0), I.f > lo <=> I > lo or
    // (I == lo, f > 0); I.f <= hi <=> I < hi or (I == hi, f == 0); I.f < hi <=> I < hi.
    auto nonneg = [&]() {
      if (hi && *hi < 0) return;
      if (hi && *hi == 0 && p.excl_max) return;
      const int64_t ilo = lo && *lo > 0 ? *lo : 0;
      std::vector<Regex> parts;
      // I strictly inside (ilo or ilo+1 .. hi-1) with any fraction
      const bool lo_active = lo && *lo >= 0;
      const int64_t first_free = lo_active && p.excl_min ? ilo + 1 : ilo;
      const std::optional<int64_t> last_free = hi ? std::optional<int64_t>(*hi - 1) : std::nullopt;
      if (!last_free || first_free <= *last_free) {
        parts.push_back(
            re_concat({naturals(static_cast<uint64_t>(first_free), last_free ? *last_free : -1),
                       re_opt(frac)}));
      }
      if (lo_active && p.excl_min && (!hi || ilo < *hi)) {
        parts.push_back(
            re_concat({re_literal(std::to_string(ilo)), nonzero_frac}));  // lo < v < lo+1
      }
      if (hi && !p.excl_max && *hi >= ilo && !(lo_active && p.excl_min && *hi == ilo)) {
        parts.push_back(
            re_concat({re_literal(std::to_string(*hi)), re_opt(zero_frac)}));  // v == hi
      }
      alts.push_back(re_alt(std::move(parts)));
    };
    // Negative values -M (M = I.f > 0): v >= lo <=> M <= -lo; v > lo <=> M < -lo;
    // v <= hi <=> M >= -hi; v < hi <=> M > -hi.
    auto negative = [&]() {
      if (lo && *lo > 0) return;
      if (lo && *lo == 0) return;  // only -0.0..., which equals 0: written without the sign
      // M ranges over (0, inf) bounded by: M <= -lo (or <) and M >= -hi (or >) when hi < 0.
      const std::optional<int64_t> mhi =
          lo ? std::optional<int64_t>(-*lo) : std::nullopt;  // M <= mhi
      const bool mhi_excl = p.excl_min;
      const int64_t mlo = hi && *hi < 0 ? -*hi : 0;  // M >= mlo (or > when excl_max or mlo == 0)
      const bool mlo_excl = mlo == 0 || p.excl_max;
      std::vector<Regex> parts;
      // I in [mlo or mlo+1 .. mhi-1] any fraction (but M > 0: I == 0 needs a nonzero fraction)
      const int64_t first_free = mlo_excl ? mlo + 1 : mlo;
      const std::optional<int64_t> last_free =
          mhi ? std::optional<int64_t>(*mhi - 1) : std::nullopt;
      if (first_free == 0) parts.push_back(re_concat({re_char('0'), nonzero_frac}));
      const int64_t ff = std::max<int64_t>(first_free, 1);
      if (!last_free || ff <= *last_free) {
        parts.push_back(re_concat(
            {naturals(static_cast<uint64_t>(ff), last_free ? *last_free : -1), re_opt(frac)}));
      }
      if (mlo_excl && mlo > 0 && (!mhi || mlo < *mhi)) {
        parts.push_back(re_concat({re_literal(std::to_string(mlo)), nonzero_frac}));
      }
      if (mhi && !mhi_excl && *mhi >= std::max<int64_t>(mlo, 1) && !(mlo_excl && *mhi == mlo)) {
        parts.push_back(re_concat({re_literal(std::to_string(*mhi)), re_opt(zero_frac)}));
      }
      if (!parts.empty()) alts.push_back(re_concat({re_char('-'), re_alt(std::move(parts))}));
    };
    nonneg();
    negative();
    if (!alts.empty()) add(rule, {lex(re_alt(std::move(alts)))});
  }

  int32_t element_rule(const Plan& p, size_t i) {
    if (i < p.prefix.size()) return value_rule(p.prefix[i], fmt::format("{}/items/{}", p.where, i));
    return value_rule(p.items, p.where + "/items");
  }

  void array_productions(const Plan& p, int32_t rule) {
    if (p.max_items >= 0 && p.max_items < p.min_items) return;
    if (p.min_items > o_.max_repeat) {
      unsupported(p.where, "minItems", fmt::format("above {} is not supported", o_.max_repeat));
    }
    const int64_t prefix_n = static_cast<int64_t>(p.prefix.size());
    // Elements past the prefix: none when items is false.
    const int64_t cap = p.items_false
                            ? std::min<int64_t>(prefix_n, p.max_items < 0 ? prefix_n : p.max_items)
                            : p.max_items;
    if (cap >= 0 && cap < p.min_items) return;
    const int64_t k = std::max(p.min_items, prefix_n);  // positions expanded one by one
    if (cap > o_.max_repeat && cap > k) {
      unsupported(p.where, "maxItems", fmt::format("above {} is not supported", o_.max_repeat));
    }
    const int32_t open = lit("["), close = lit("]"), comma = lit(",");
    if (p.min_items == 0) add(rule, {open, ws_opt_, close});
    if (cap == 0) return;
    // rest[i]: after i elements (i >= 1).
    const int64_t last = cap < 0 ? std::max<int64_t>(k, 1) : cap;  // rules rest[1..last]
    std::vector<int32_t> rest(static_cast<size_t>(last + 2), -1);
    for (int64_t i = 1; i <= last; ++i) rest[i] = g_->add_rule(p.where + "/items-rest");
    for (int64_t i = 1; i <= last; ++i) {
      const bool can_end = i >= p.min_items;
      if (can_end) add(rest[i], {});
      const bool can_more = cap < 0 || i < cap;
      if (!can_more) continue;
      const int32_t next = cap < 0 && i == last ? rest[i] : rest[i + 1];
      if (next < 0) continue;
      add(rest[i], {ws_opt_, comma, ws_opt_, element_rule(p, static_cast<size_t>(i)), next});
    }
    add(rule, {open, ws_opt_, element_rule(p, 0), rest[1], ws_opt_, close});
  }

  void object_productions(const Plan& p, int32_t rule) {
    const int32_t open = lit("{"), close = lit("}"), comma = lit(","), colon = lit(":");
    auto forbidden = [&](const std::string& k) {
      return std::find(p.forbidden.begin(), p.forbidden.end(), k) != p.forbidden.end();
    };
    auto key_ok = [&](const std::string& k) {
      for (const Regex& r : p.key_patterns) {
        if (!regex_matches(r, k)) return false;
      }
      return !forbidden(k);
    };
    auto is_required = [&](const std::string& k) {
      return std::find(p.required.begin(), p.required.end(), k) != p.required.end();
    };
    // Declared properties (minus forbidden ones), plus required names not declared (their
    // schema comes from patternProperties / additionalProperties).
    std::vector<std::pair<std::string, Conj>> props;
    for (const auto& [k, c] : p.props) {
      if (!key_ok(k)) {
        if (is_required(k)) return;  // a required property that may not appear: no object
        continue;
      }
      props.push_back({k, c});
    }
    for (const auto& r : p.required) {
      if (std::any_of(props.begin(), props.end(), [&](const auto& x) { return x.first == r; }))
        continue;
      auto extra = extra_schema_for(p, r);
      if (!extra || !key_ok(r)) return;
      props.push_back({r, *extra});
    }
    // A declared key that also matches a pattern must satisfy both.
    for (auto& [k, c] : props) {
      for (const auto& [r, pc] : p.pattern_props) {
        if (regex_matches(r, k)) c.insert(c.end(), pc.begin(), pc.end());
      }
    }
    // Additional members: keys matched by a pattern, and (unless forbidden) any other key: a
    // string, and (a negated component of the same lexeme) none of the declared or forbidden
    // keys in any of their encodings. Once a key leaves those, the lexer is in the string's
    // own loop whichever key it left, so one mask serves every undeclared key's text. (A
    // complement written out as one regex, a trie of "any character but the next", was
    // thousands of NFA states per object for the escapes it had to exclude.)
    std::vector<Regex> taken;
    for (const auto& [k, c] : props) taken.push_back(re_literal(k));
    for (const auto& k : p.forbidden) taken.push_back(re_literal(k));
    const Regex taken_keys = taken.empty() ? Regex{} : quoted(encode(re_alt(std::move(taken))));
    auto add_others = [&](LexemeSpec& key) {
      key.components.push_back({quoted(encode(re_star(re_any_char()))), false});
      if (taken_keys) key.components.push_back({taken_keys, true});
    };
    std::vector<std::vector<int32_t>> extra_members;
    // Keys matching several patterns satisfy all their schemas: one member kind per set of
    // patterns a key matches (the others' patterns complemented), 2^n - 1 of them.
    const size_t np = p.pattern_props.size();
    if (np > 4) {
      unsupported(p.where, "patternProperties", "with more than 4 patterns is not supported");
    }
    auto key_lexeme = [&](LexemeSpec key) {
      for (const Regex& r : p.key_patterns) key.components.push_back({quoted(encode(r)), false});
      return lex(key);
    };
    for (uint32_t set = 1; set < (1u << np); ++set) {
      LexemeSpec key;
      Conj c;
      for (size_t i = 0; i < np; ++i) {
        const bool in = (set >> i & 1) != 0;
        key.components.push_back({quoted(encode(p.pattern_props[i].first)), !in});
        if (in)
          c.insert(c.end(), p.pattern_props[i].second.begin(), p.pattern_props[i].second.end());
      }
      add_others(key);
      extra_members.push_back({key_lexeme(key), ws_opt_, colon, ws_opt_,
                               value_rule(c, p.where + "/patternProperties")});
    }
    if (!p.additional_false) {
      LexemeSpec key;
      add_others(key);
      for (const auto& [r, c] : p.pattern_props)
        key.components.push_back({quoted(encode(r)), true});
      extra_members.push_back({key_lexeme(key), ws_opt_, colon, ws_opt_,
                               value_rule(p.additional, p.where + "/additionalProperties")});
    }
    const int32_t member_extra = g_->add_rule(p.where + "/additional");
    for (auto& m : extra_members) add(member_extra, m);
    // R[i][c]: members from declared property i on, c written so far (0: none yet, so no
    // comma; counts saturate at C when there is no maximum).
    const int64_t min = p.min_props, max = p.max_props;
    if (max >= 0 && max < min) return;
    const int64_t n = static_cast<int64_t>(props.size());
    int64_t required_n = 0;
    for (const auto& [k, c] : props) required_n += is_required(k) ? 1 : 0;
    if (max >= 0 && required_n > max) return;
    if (extra_members.empty() && min > n) return;
    const int64_t C = std::max<int64_t>({1, min, max});
    if (C > 64)
      unsupported(p.where, max > 64 ? "maxProperties" : "minProperties",
                  "above 64 is not supported");
    auto next_count = [&](int64_t c) { return max < 0 ? std::min(c + 1, C) : c + 1; };
    std::vector<std::vector<int32_t>> R(static_cast<size_t>(n + 1),
                                        std::vector<int32_t>(static_cast<size_t>(C + 1), -1));
    auto rule_at = [&](int64_t i, int64_t c) {
      int32_t& r = R[static_cast<size_t>(i)][static_cast<size_t>(c)];
      if (r < 0) r = g_->add_rule(p.where + "/members");
      return r;
    };
    // Only the states reachable from R[0][0] are built, from the end backwards.
    for (int64_t i = n; i >= 0; --i) {
      for (int64_t c = 0; c <= C; ++c) {
        if (c > i + (i == n ? C : 0) && c > 0) continue;
        const int32_t r = rule_at(i, c);
        std::vector<int32_t> sep =
            c > 0 ? std::vector<int32_t>{ws_opt_, comma, ws_opt_} : std::vector<int32_t>{};
        const bool room = max < 0 || c < max;
        if (i == n) {
          if (c >= min) add(r, {});
          if (!extra_members.empty() && room) {
            std::vector<int32_t> rhs = sep;
            rhs.push_back(member_extra);
            rhs.push_back(rule_at(n, next_count(c)));
            add(r, rhs);
          }
          continue;
        }
        const auto& [k, cj] = props[static_cast<size_t>(i)];
        if (room) {
          std::vector<int32_t> rhs = sep;
          rhs.insert(rhs.end(), {lex(quoted(encode(re_literal(k)))), ws_opt_, colon, ws_opt_,
                                 value_rule(cj, p.where + "/properties/" + pointer_escape(k)),
                                 rule_at(i + 1, next_count(c))});
          add(r, rhs);
        }
        if (!is_required(k)) add(r, {rule_at(i + 1, c)});
      }
    }
    add(rule, {open, ws_opt_, rule_at(0, 0), ws_opt_, close});
  }

  const json& root_;
  JsonSchemaOptions o_;
  std::shared_ptr<Grammar> g_;
  int32_t ws_opt_ = -1;
  int32_t any_rule_ = -1;
  size_t productions_ = 0;
  size_t depth_ = 0;
  std::unordered_map<std::string, int32_t> conj_rules_;
  std::unordered_map<const json*, std::string> where_;
  std::vector<const json*> expanding_;
  std::vector<const json*> negating_;
  std::deque<json> arena_;  // synthetic schema nodes (stable addresses)
};

}  // namespace

std::shared_ptr<Grammar> compile_json_schema(const nlohmann::ordered_json& schema,
                                             const JsonSchemaOptions& options) {
  Compiler c(schema, options);
  return c.run();
}

Regex pretty_whitespace() {
  static const Regex r =
      re_alt({re_char(' '), re_concat({re_repeat(re_char('\n'), 1, 2),
                                       re_repeat(re_class({{' ', ' '}, {'\t', '\t'}}), 0, 20)})});
  return r;
}

int32_t add_json_schema(const std::shared_ptr<Grammar>& g, const nlohmann::ordered_json& schema,
                        const JsonSchemaOptions& options, int32_t* ws) {
  Compiler c(schema, options, g);
  const int32_t r = c.value_rule();
  if (ws != nullptr) *ws = c.ws_rule();
  return r;
}

std::shared_ptr<Grammar> json_value_grammar(bool object_only, const JsonSchemaOptions& options) {
  const json any = json::object();
  Compiler c(any, options);
  return c.run(object_only);
}

}  // namespace loom::grammar
