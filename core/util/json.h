#pragma once
// A tiny JSON writer for --json output: objects and arrays built in order.

#include <cstdint>
#include <string>
#include <string_view>

namespace wmk::util {

// s as a JSON string literal, quotes included.
std::string json_quote(std::string_view s);

// Builds one JSON value. Usage: JsonWriter w; w.begin_object(); w.key("a"); w.value(1); ...
class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(std::int64_t n);
  JsonWriter& value(int n) { return value(static_cast<std::int64_t>(n)); }
  JsonWriter& value(bool b);
  JsonWriter& null();
  // key(k) then value(v).
  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }
  const std::string& str() const { return out_; }

 private:
  void comma();
  std::string out_;
  bool need_comma_ = false;
};

}  // namespace wmk::util
