#include "errors.h"

#include <cerrno>
#include <cstring>

namespace devmapper {

const char* errnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

Napi::Error systemError(Napi::Env env, int err, const char* syscall, const std::string& what,
                        const std::string& detail) {
  std::string message = what + ": " + std::strerror(err);
  if (!detail.empty()) message += " (" + detail + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", Napi::String::New(env, errnoName(err)));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

static std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return std::string("boolean ") + (v.As<Napi::Boolean>().Value() ? "true" : "false");
  if (v.IsNumber()) return "number " + v.ToString().Utf8Value();
  if (v.IsString()) return "string";
  if (v.IsArray()) return "array";
  if (v.IsFunction()) return "function";
  if (v.IsObject()) return "object";
  return "value of another type";
}

Napi::TypeError typeError(Napi::Env env, const std::string& expected, const std::string& name,
                          const Napi::Value& received) {
  return Napi::TypeError::New(
      env, "Expected " + expected + " for " + name + " but received " + describe(received));
}

}  // namespace devmapper
