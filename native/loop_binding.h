#pragma once

#include <napi.h>

namespace devmapper {

// Adds loopGetFree, loopConfigure, loopClear, loopStatus, loopSetCapacity, blockDeviceSize
// and blockDiscard to the exports.
void InitLoop(Napi::Env env, Napi::Object exports);

}  // namespace devmapper
