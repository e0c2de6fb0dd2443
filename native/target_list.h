// TargetList: the rows of a TABLE_LOAD, read from JavaScript a range at a time, so that a
// large table is taken in between turns of the event loop instead of in one piece when the
// request is made; the request that loads it then takes the rows over.
#pragma once

#include <napi.h>

#include <vector>

#include "dm_ioctl.h"
#include "keys.h"

namespace devmapper {

// Reads rows[i] (a {start, length, type, params} object) as a dm::TargetSpec.
dm::TargetSpec readTargetSpec(const Napi::Value& rowValue, uint32_t i, const Keys::View& k);

class TargetList : public Napi::ObjectWrap<TargetList> {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit TargetList(const Napi::CallbackInfo& info);
  // The rows may hold a key (crypt): they are wiped when the list goes.
  ~TargetList() override;

  // The list's rows, moved out; a list is loaded once (a second take is a TypeError).
  std::vector<dm::TargetSpec> take(Napi::Env env);
  // `value` when it is a TargetList of this environment, else nullptr.
  static TargetList* from(Napi::Env env, const Napi::Value& value);

 private:
  Napi::Value Append(const Napi::CallbackInfo& info);
  Napi::Value Count(const Napi::CallbackInfo& info);
  void wipe();

  std::vector<dm::TargetSpec> rows_;
  bool taken_ = false;
};

}  // namespace devmapper
