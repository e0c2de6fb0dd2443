// Property names made once per environment. Looking a property up by a C string makes and
// internalizes a JavaScript string on every call: for a request and its answer that was
// most of the addon's own cost per ioctl.
#pragma once

#include <napi.h>


namespace devmapper {

class Keys {
 public:
  enum Id {
    Cmd, Flags, Name, Uuid, Dev, EventNr, Targets, Data, Message, Sector, Repeatable,
    Start, Length, Type, Params,
    Version, OpenCount, TargetCount, Ioctls, BufferSize, Devices, Versions, Deps,
    Bytes, Index, Count, Types, Ascii,
    kCount
  };

  explicit Keys(Napi::Env env) {
    static constexpr const char* kNames[kCount] = {
        "cmd", "flags", "name", "uuid", "dev", "eventNr", "targets", "data", "message", "sector", "repeatable",
        "start", "length", "type", "params",
        "version", "openCount", "targetCount", "ioctls", "bufferSize", "devices", "versions", "deps",
        "bytes", "index", "count", "types", "ascii",
    };
    // Kept in an array: Node-API before version 10 references objects only, not strings.
    Napi::Array names = Napi::Array::New(env, kCount);
    for (uint32_t i = 0; i < kCount; i++) names.Set(i, Napi::String::New(env, kNames[i]));
    names_ = Napi::Persistent(names.As<Napi::Object>());
  }

  // The names, for the length of one call: `view[Keys::Name]`.
  class View {
   public:
    explicit View(Napi::Object names) : names_(names) {}
    Napi::Value operator[](Id id) const { return names_.Get(static_cast<uint32_t>(id)); }

   private:
    Napi::Object names_;
  };
  View view() const { return View(names_.Value()); }

 private:
  Napi::ObjectReference names_;
};

// What the addon keeps per environment.
struct AddonData {
  explicit AddonData(Napi::Env env) : keys(env) {}
  Napi::FunctionReference watcher;
  // The TargetList class, by which a request's target list is recognised.
  Napi::FunctionReference targetList;
  Keys keys;
};

inline AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace devmapper
