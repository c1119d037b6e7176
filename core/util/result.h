#pragma once
// Result<T>: the value of an operation that can fail in an expected way, or the
// typed Error saying why. Unexpected failures (bugs, broken invariants) throw.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace wmk {

// What kind of expected failure happened. Callers branch on this, never on text.
enum class Errc {
  invalid_argument,  // the caller's input is malformed (bad address, bad value)
  not_found,
  already_exists,
  bad_credentials,   // wrong login or password
  wrong_passphrase,  // wrong key passphrase
  locked_out,        // too many failures: retry later
  busy,              // another attempt on the same thing is in flight: retry in a moment
  disabled,          // the account or key is switched off
  expired,           // session, grant or key past its time
  revoked,           // grant or session ended by someone else
  key_in_use,        // the key has a live grant in another session
  conflict,          // a concurrent change won; nothing was written
  corrupt,           // stored data or input is damaged
  unsupported,
  io,           // the file system or a subprocess failed
  crypto,       // a cryptographic operation failed
  config,       // the configuration is invalid
  unavailable,  // a server the service needs (the database) cannot be reached: retry later
  internal,
};

// Short stable name of an error kind, for --json output and logs.
const char* errc_name(Errc code);

struct Error {
  Errc code;
  std::string message;  // says what went wrong and why; never contains a secret
};

inline Error make_error(Errc code, std::string message) {
  return Error{code, std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  Errc code() const { return error().code; }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return err_;
  }
  Errc code() const { return error().code; }

 private:
  Error err_{Errc::internal, {}};
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace wmk

// Propagates an error from an expression returning a Result; evaluates to nothing.
#define WMK_TRY(expr)                 \
  do {                                \
    auto wmk_try_result_ = (expr);    \
    if (!wmk_try_result_.ok())        \
      return wmk_try_result_.error(); \
  } while (0)
