#pragma once

#include <napi.h>

namespace devmapper {

// Adds the SysV semaphore primitives of udev cookies (semCreate, semAdd, semValue, semRemove,
// semWaitZeroSync, semWaitZero) and mknodBlock to the exports.
void InitUdev(Napi::Env env, Napi::Object exports);

}  // namespace devmapper
