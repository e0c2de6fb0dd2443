// Loop-device and block-device functions for JavaScript: each runs on the threadpool.
#include "loop_binding.h"

#include <functional>

#include "convert.h"
#include "errors.h"
#include "loop.h"

namespace devmapper {

namespace {

// Runs `work` on the threadpool and settles a promise with `done`'s value or the failure.
class LoopWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<loopdev::Failure()>;
  using Done = std::function<Napi::Value(Napi::Env)>;

  LoopWorker(Napi::Env env, const char* name, Work work, Done done)
      : Napi::AsyncWorker(env, name),
        work_(std::move(work)),
        done_(std::move(done)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { failure_ = work_(); }

  void OnOK() override {
    Napi::Env env = Env();
    guarded([&] {
      if (failure_.err != 0) {
        std::string what = std::string(failure_.syscall) + " " + failure_.path;
        Napi::Error e = systemError(env, failure_.err, failure_.syscall, what, "");
        e.Set("path", Napi::String::New(env, failure_.path));
        deferred_.Reject(e.Value());
      } else {
        deferred_.Resolve(done_(env));
      }
    });
  }

  void OnError(const Napi::Error&) override {}

 private:
  Work work_;
  Done done_;
  Napi::Promise::Deferred deferred_;
  loopdev::Failure failure_;
};

Napi::Value queue(Napi::Env env, const char* name, LoopWorker::Work work, LoopWorker::Done done) {
  auto* w = new LoopWorker(env, name, std::move(work), std::move(done));
  w->Queue();
  return w->Promise();
}

Napi::Value undefinedValue(Napi::Env env) { return env.Undefined(); }

Napi::Value LoopGetFree(const Napi::CallbackInfo& info) {
  std::string control = requirePath(info[0], "controlPath");
  auto number = std::make_shared<int>(-1);
  return queue(
      info.Env(), "devmapper:loopGetFree",
      [control, number] { return loopdev::getFree(control, number.get()); },
      [number](Napi::Env env) { return Napi::Number::New(env, *number); });
}

Napi::Value LoopConfigure(const Napi::CallbackInfo& info) {
  std::string loop = requirePath(info[0], "loopPath");
  std::string file = requirePath(info[1], "filePath");
  Napi::Object o = requireObject(info[2], "config");
  loopdev::Config c;
  c.readOnly = requireBool(o.Get("readOnly"), "config.readOnly");
  c.autoclear = requireBool(o.Get("autoclear"), "config.autoclear");
  c.directIo = requireBool(o.Get("directIo"), "config.directIo");
  c.offset = requireInteger(o.Get("offset"), "config.offset", kMaxSafeInteger);
  c.sizeLimit = requireInteger(o.Get("sizeLimit"), "config.sizeLimit", kMaxSafeInteger);
  c.blockSize = static_cast<uint32_t>(requireInteger(o.Get("blockSize"), "config.blockSize", 65536));
  return queue(
      info.Env(), "devmapper:loopConfigure", [loop, file, c] { return loopdev::configure(loop, file, c); },
      undefinedValue);
}

Napi::Value PathOperation(const Napi::CallbackInfo& info, const char* name,
                          loopdev::Failure (*op)(const std::string&)) {
  std::string path = requirePath(info[0], "path");
  return queue(info.Env(), name, [path, op] { return op(path); }, undefinedValue);
}

Napi::Value LoopClear(const Napi::CallbackInfo& info) {
  return PathOperation(info, "devmapper:loopClear", loopdev::clear);
}

Napi::Value LoopSetCapacity(const Napi::CallbackInfo& info) {
  return PathOperation(info, "devmapper:loopSetCapacity", loopdev::setCapacity);
}

Napi::Value LoopStatus(const Napi::CallbackInfo& info) {
  std::string path = requirePath(info[0], "loopPath");
  auto out = std::make_shared<loopdev::Info>();
  return queue(
      info.Env(), "devmapper:loopStatus", [path, out] { return loopdev::status(path, out.get()); },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("device", number(env, out->device));
        o.Set("inode", number(env, out->inode));
        o.Set("rdevice", number(env, out->rdevice));
        o.Set("offset", number(env, out->offset));
        o.Set("sizeLimit", number(env, out->sizeLimit));
        o.Set("number", Napi::Number::New(env, out->number));
        o.Set("flags", Napi::Number::New(env, out->flags));
        o.Set("fileName", Napi::String::New(env, out->fileName));
        return o;
      });
}

Napi::Value BlockDeviceSize(const Napi::CallbackInfo& info) {
  std::string path = requirePath(info[0], "path");
  auto bytes = std::make_shared<uint64_t>(0);
  return queue(
      info.Env(), "devmapper:blockDeviceSize",
      [path, bytes] { return loopdev::blockDeviceSize(path, bytes.get()); },
      [bytes](Napi::Env env) -> Napi::Value { return number(env, *bytes); });
}

Napi::Value BlockDiscard(const Napi::CallbackInfo& info) {
  std::string path = requirePath(info[0], "path");
  uint64_t offset = requireInteger(info[1], "offset", kMaxSafeInteger);
  uint64_t length = requireInteger(info[2], "length", kMaxSafeInteger);
  return queue(
      info.Env(), "devmapper:blockDiscard",
      [path, offset, length] { return loopdev::blockDiscard(path, offset, length); }, undefinedValue);
}

Napi::Value BlockGeometry(const Napi::CallbackInfo& info) {
  std::string path = requirePath(info[0], "path");
  auto geo = std::make_shared<loopdev::Geometry>();
  return queue(
      info.Env(), "devmapper:blockGeometry", [path, geo] { return loopdev::blockGeometry(path, geo.get()); },
      [geo](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("cylinders", Napi::Number::New(env, geo->cylinders));
        o.Set("heads", Napi::Number::New(env, geo->heads));
        o.Set("sectors", Napi::Number::New(env, geo->sectors));
        o.Set("start", number(env, geo->start));
        return o;
      });
}

}  // namespace

void InitLoop(Napi::Env env, Napi::Object exports) {
  exports.Set("loopGetFree", Napi::Function::New<LoopGetFree>(env, "loopGetFree"));
  exports.Set("loopConfigure", Napi::Function::New<LoopConfigure>(env, "loopConfigure"));
  exports.Set("loopClear", Napi::Function::New<LoopClear>(env, "loopClear"));
  exports.Set("loopStatus", Napi::Function::New<LoopStatus>(env, "loopStatus"));
  exports.Set("loopSetCapacity", Napi::Function::New<LoopSetCapacity>(env, "loopSetCapacity"));
  exports.Set("blockDeviceSize", Napi::Function::New<BlockDeviceSize>(env, "blockDeviceSize"));
  exports.Set("blockDiscard", Napi::Function::New<BlockDiscard>(env, "blockDiscard"));
  exports.Set("blockGeometry", Napi::Function::New<BlockGeometry>(env, "blockGeometry"));
}

}  // namespace devmapper
