// Shape checks for values coming from JavaScript: each throws a TypeError (or RangeError)
// naming the argument, never crashes on a wrong type.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "errors.h"

namespace devmapper {

constexpr double kMaxSafeInteger = 9007199254740991.0;

// Runs `f` and drops any exception. For code that runs when JavaScript may no longer run (a
// worker being terminated, the environment shutting down): there every napi call can fail, and
// node-addon-api turns a failure into a C++ exception, which must never escape into Node (it
// would abort the whole process). What such code settles is then gone with its environment.
template <typename F>
void guarded(F&& f) noexcept {
  try {
    f();
  } catch (...) {
  }
}

inline Napi::Object requireObject(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || v.IsArray() || v.IsFunction())
    throw typeError(v.Env(), "an object", name, v);
  return v.As<Napi::Object>();
}

inline std::string requireString(const Napi::Value& v, const std::string& name) {
  if (!v.IsString()) throw typeError(v.Env(), "a string", name, v);
  return v.As<Napi::String>().Utf8Value();
}

// A filesystem path: a string without NUL bytes (which would cut it short).
inline std::string requirePath(const Napi::Value& v, const std::string& name) {
  std::string s = requireString(v, name);
  if (s.empty() || s.find('\0') != std::string::npos)
    throw Napi::TypeError::New(v.Env(), "Expected a path without NUL bytes for " + name + " but received " + (s.empty() ? "an empty string" : "a string with a NUL byte"));
  return s;
}

inline uint64_t requireInteger(const Napi::Value& v, const std::string& name, double max) {
  if (!v.IsNumber()) throw typeError(v.Env(), "a non-negative integer", name, v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0 || std::floor(d) != d || d > max)
    throw Napi::RangeError::New(v.Env(), "Expected a non-negative integer up to " +
                                             std::to_string(static_cast<uint64_t>(max)) + " for " +
                                             name + " but received " + v.ToString().Utf8Value());
  return static_cast<uint64_t>(d);
}

// Whether v is a whole number in [0, max] (requireInteger's test, without its message).
inline bool isInteger(const Napi::Value& v, double max) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return std::isfinite(d) && d >= 0 && std::floor(d) == d && d <= max;
}

// The value of a number isInteger accepted.
inline uint64_t integer(const Napi::Value& v) { return static_cast<uint64_t>(v.As<Napi::Number>().DoubleValue()); }

// A whole number argument in [0, max], read with one Node-API call.
inline uint64_t wholeArg(napi_env env, napi_value v, const char* name, double max) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_number_expected && std::isfinite(d) && d >= 0 && std::floor(d) == d && d <= max)
    return static_cast<uint64_t>(d);
  Napi::Value value(env, v);
  if (!value.IsNumber()) throw typeError(env, "a non-negative integer", name, value);
  throw Napi::RangeError::New(env, "Expected a non-negative integer up to " + std::to_string(static_cast<uint64_t>(max)) +
                                       " for " + name + " but received " + value.ToString().Utf8Value());
}

// A string argument into `out`: one Node-API call for a string of up to 251 bytes (every
// device name and uuid), two more for a longer one. (A copy cut short by the buffer stops
// within a character of its end, so a copy that stops earlier is the whole string.)
inline void stringArg(napi_env env, napi_value v, const char* name, std::string& out) {
  char buf[256];
  size_t n = 0;
  napi_status s = napi_get_value_string_utf8(env, v, buf, sizeof buf, &n);
  if (s == napi_string_expected) throw typeError(env, "a string", name, Napi::Value(env, v));
  if (s != napi_ok) throw Napi::Error::New(env, std::string("cannot read ") + name);
  if (n + 4 < sizeof buf) {
    out.assign(buf, n);
    return;
  }
  out = Napi::Value(env, v).As<Napi::String>().Utf8Value();
}

// A boolean argument, read with one Node-API call.
inline bool boolArg(napi_env env, napi_value v, const char* name) {
  bool b = false;
  napi_status s = napi_get_value_bool(env, v, &b);
  if (s == napi_boolean_expected) throw typeError(env, "a boolean", name, Napi::Value(env, v));
  if (s != napi_ok) throw Napi::Error::New(env, std::string("cannot read ") + name);
  return b;
}

inline bool requireBool(const Napi::Value& v, const std::string& name) {
  if (!v.IsBoolean()) throw typeError(v.Env(), "a boolean", name, v);
  return v.As<Napi::Boolean>().Value();
}

// A 64-bit value for JavaScript, exactly: a Number up to 2^53 - 1, a BigInt above (a double
// would round it). TypeScript refuses what it cannot hold as a number.
inline Napi::Value number(Napi::Env env, uint64_t v) {
  constexpr uint64_t kMaxSafe = (uint64_t{1} << 53) - 1;
  if (v > kMaxSafe) return Napi::BigInt::New(env, v);
  return Napi::Number::New(env, static_cast<double>(v));
}

}  // namespace devmapper
