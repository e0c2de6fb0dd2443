// Native failures as JavaScript errors: an Error with errno, code and syscall (and the
// DM command), which TypeScript turns into DmError.
#pragma once

#include <napi.h>

#include <string>

namespace devmapper {

// `what` opens the message ("DM_DEV_REMOVE", or "open /dev/loop3"); `detail` follows it.
Napi::Error systemError(Napi::Env env, int err, const char* syscall, const std::string& what,
                        const std::string& detail);

// "Expected <expected> for <name> but received <what the value is>".
Napi::TypeError typeError(Napi::Env env, const std::string& expected, const std::string& name,
                          const Napi::Value& received);

const char* errnoName(int err);

}  // namespace devmapper
