#include "common/json.h"

#include <simdjson.h>

#include <optional>
#include <string>

namespace dsx {
namespace {

using json = nlohmann::json;

// What one pass over the text finds before parsing: the byte offset where it nests deeper than
// kMaxJsonDepth, if it does, and whether it holds a negative zero integer ("-0"), which the
// fast parser below cannot tell from 0. Brackets and signs inside strings do not count.
struct Scan {
  std::optional<size_t> too_deep;
  bool negative_zero = false;
};

Scan scan(std::string_view text) {
  Scan out;
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        out.too_deep = i;
        return out;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == '-' && i + 1 < text.size() && text[i + 1] == '0') {
      const char next = i + 2 < text.size() ? text[i + 2] : ' ';
      if (next != '.' && next != 'e' && next != 'E') out.negative_zero = true;
    }
  }
  return out;
}

// nlohmann's value for a simdjson element, with nlohmann's rules: an integer without a sign is
// unsigned, a negative one signed; in an object, the last of two equal keys wins.
json convert(simdjson::dom::element e) {
  using Type = simdjson::dom::element_type;
  switch (e.type()) {
    case Type::OBJECT: {
      json out(json::value_t::object);
      auto& members = out.get_ref<json::object_t&>();
      for (auto [key, value] : simdjson::dom::object(e))
        members.insert_or_assign(std::string(key), convert(value));
      return out;
    }
    case Type::ARRAY: {
      json out(json::value_t::array);
      auto& items = out.get_ref<json::array_t&>();
      for (simdjson::dom::element value : simdjson::dom::array(e))
        items.push_back(convert(value));
      return out;
    }
    case Type::STRING:
      return json(std::string(std::string_view(e)));
    case Type::INT64: {
      const int64_t v = int64_t(e);
      return v >= 0 ? json(static_cast<uint64_t>(v)) : json(v);
    }
    case Type::UINT64:
      return json(uint64_t(e));
    case Type::DOUBLE:
      return json(double(e));
    case Type::BOOL:
      return json(bool(e));
    case Type::NULL_VALUE:
      return json(nullptr);
  }
  return json();
}

// Documents up to this size go through simdjson (a parser per thread keeps buffers of about
// this size); larger ones, rare (a catalog publication), through nlohmann's parser.
constexpr size_t kFastMax = 64 * 1024;

}  // namespace

Result<nlohmann::json> parse_json_text(std::string_view text) {
  const Scan s = scan(text);
  if (s.too_deep)
    return Status::invalid_argument("invalid JSON at byte " + std::to_string(*s.too_deep) +
                                    ": nested deeper than " + std::to_string(kMaxJsonDepth) +
                                    " levels");
  // simdjson first: on a 2 KB channel event nlohmann's parser takes 12 us, this path 5
  // (bench/json_bench.cpp, docs/performance.md). Anything simdjson refuses (and a "-0") goes to
  // nlohmann's parser, whose result or error message is then the answer, as before.
  if (text.size() <= kFastMax && !s.negative_zero) {
    thread_local simdjson::dom::parser parser(kFastMax);
    simdjson::dom::element root;
    if (parser.parse(text.data(), text.size()).get(root) == simdjson::SUCCESS) return convert(root);
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return Status::invalid_argument(
        "invalid JSON at byte " + std::to_string(e.byte) + ": " +
        std::string(e.what()).substr(std::string(e.what()).find(':') + 2));
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace dsx
