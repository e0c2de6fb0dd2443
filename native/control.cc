#include "control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "convert.h"
#include "errors.h"
#include "keys.h"
#include "target_list.h"

namespace devmapper {

namespace {

constexpr double kMaxU32 = 4294967295.0;
// Numbers of the compact synchronous answer: flags, dev (low, high 32 bits), open_count,
// event_nr, target_count, ioctls, buffer size, version (3).
constexpr size_t kSyncHeaderWords = 11;
// A call() answer's: those, then its rows' (or devices') count and whether their strings are
// all ASCII (1) or not (0).
constexpr size_t kCallHeaderWords = kSyncHeaderWords + 2;

std::string commandName(uint32_t cmd) {
  const dm::CommandInfo* info = dm::commandInfo(cmd);
  return info ? info->name : "DM_UNKNOWN";
}

Napi::Error outcomeError(Napi::Env env, uint32_t cmd, const dm::Outcome& outcome) {
  std::string command = commandName(cmd);
  Napi::Error error = systemError(env, outcome.err, outcome.syscall, command, outcome.detail);
  error.Set("command", Napi::String::New(env, command));
  return error;
}

Napi::Array versionArray(Napi::Env env, const uint32_t v[3]) {
  Napi::Array a = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; i++) a.Set(i, Napi::Number::New(env, v[i]));
  return a;
}

int openControl(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

// The payload fields of a request object (targets, data, message, sector, repeatable), into
// `req`, whose header fields are read already; then the whole request checked.
static void readPayload(const Napi::Object& o, const Keys::View& k, dm::Request& req) {
  Napi::Value t = o.Get(k[Keys::Targets]);
  if (TargetList* list = TargetList::from(o.Env(), t)) {
    req.targets = list->take(o.Env());
  } else if (!t.IsUndefined()) {
    if (!t.IsArray()) throw typeError(o.Env(), "an array or a target list", "request.targets", t);
    Napi::Array rows = t.As<Napi::Array>();
    if (rows.Length() > dm::kMaxBufferSize / dm::kSpecSize)
      throw Napi::RangeError::New(o.Env(), "Invalid request: request.targets has more rows than a 256 MiB request can hold");
    req.targets.reserve(rows.Length());
    for (uint32_t i = 0; i < rows.Length(); i++) req.targets.push_back(readTargetSpec(rows.Get(i), i, k));
  }
  // Each field read with one Node-API call where it can be (a message's request is four).
  napi_env env = o.Env();
  Napi::Value v = o.Get(k[Keys::Data]);
  if (!v.IsUndefined()) {
    req.hasData = true;
    stringArg(env, v, "request.data", req.data);
  }
  v = o.Get(k[Keys::Message]);
  if (!v.IsUndefined()) {
    req.hasMessage = true;
    stringArg(env, v, "request.message", req.message);
  }
  v = o.Get(k[Keys::Sector]);
  if (!v.IsUndefined()) req.sector = wholeArg(env, v, "request.sector", kMaxSafeInteger);
  v = o.Get(k[Keys::Repeatable]);
  if (!v.IsUndefined()) req.repeatable = boolArg(env, v, "request.repeatable");
}

static void checkWhole(Napi::Env env, const dm::Request& req) {
  std::string why = dm::checkRequest(req);
  if (!why.empty()) {
    throw Napi::RangeError::New(env, "Invalid request for " + commandName(req.cmd) + ": " + why);
  }
}

dm::Request toRequest(const Napi::Value& value) {
  Napi::Object o = requireObject(value, "request");
  const Keys::View k = addonData(o.Env()).keys.view();
  dm::Request req;
  req.cmd = static_cast<uint32_t>(requireInteger(o.Get(k[Keys::Cmd]), "request.cmd", dm::kCommandCount - 1));
  req.flags = static_cast<uint32_t>(requireInteger(o.Get(k[Keys::Flags]), "request.flags", kMaxU32));
  Napi::Value v = o.Get(k[Keys::Name]);
  if (!v.IsUndefined()) req.name = requireString(v, "request.name");
  v = o.Get(k[Keys::Uuid]);
  if (!v.IsUndefined()) req.uuid = requireString(v, "request.uuid");
  v = o.Get(k[Keys::Dev]);
  if (!v.IsUndefined()) req.dev = requireInteger(v, "request.dev", kMaxSafeInteger);
  v = o.Get(k[Keys::EventNr]);
  if (!v.IsUndefined()) req.eventNr = static_cast<uint32_t>(requireInteger(v, "request.eventNr", kMaxU32));
  readPayload(o, k, req);
  checkWhole(o.Env(), req);
  return req;
}

// The positional form of a request: (cmd, flags, dev, eventNr, name, uuid, payload), the
// numbers and strings read straight from the arguments (a fraction of the Node-API calls that
// reading eleven properties of an object takes), the payload object, if any, as above.
static dm::Request argsRequest(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  dm::Request req;
  req.cmd = static_cast<uint32_t>(wholeArg(env, info[0], "cmd", dm::kCommandCount - 1));
  req.flags = static_cast<uint32_t>(wholeArg(env, info[1], "flags", kMaxU32));
  req.dev = wholeArg(env, info[2], "dev", kMaxSafeInteger);
  req.eventNr = static_cast<uint32_t>(wholeArg(env, info[3], "eventNr", kMaxU32));
  stringArg(env, info[4], "name", req.name);
  stringArg(env, info[5], "uuid", req.uuid);
  Napi::Value payload = info[6];
  if (!payload.IsUndefined()) readPayload(requireObject(payload, "payload"), addonData(info.Env()).keys.view(), req);
  checkWhole(info.Env(), req);
  return req;
}

// An answer's memory lent to JavaScript by call(): its bytes or its index, each under an
// ArrayBuffer of its own. The client gives it back (recycle) once it has read the answer; the
// memory is then detached from the ArrayBuffer (which reads as empty from then on) and goes
// to the pool that the I/O threads copy the next large answers into. Memory never given back
// is freed (wiped, if secret) by the garbage collector.
struct AnswerLoan;
struct AnswerLending {
  dm::AnswerPool pool;
  // The memory lent, by address (JavaScript thread only).
  std::unordered_map<const void*, AnswerLoan*> out;
};

struct AnswerLoan {
  // Null: not lent by call() (the answers of ioctl() and of waits are left to the collector).
  std::shared_ptr<AnswerLending> lending;
  const void* at = nullptr;
  dm::Buffer bytes;
  std::vector<uint32_t> index;
};

namespace {

// An ArrayBuffer over an answer's memory: large ones without a copy (freed, and wiped when
// secret, by the garbage collector, unless given back first), small ones copied (cheaper
// than a finalizer). Where a runtime refuses external buffers, everything is copied.
Napi::ArrayBuffer handOver(Napi::Env env, std::unique_ptr<AnswerLoan> loan, void* data, size_t size) {
  constexpr size_t kCopyBelow = 64 * 1024;
  if (size >= kCopyBelow) {
    napi_value external;
    AnswerLoan* raw = loan.get();
    napi_status s = napi_create_external_arraybuffer(
        env, data, size,
        [](napi_env, void*, void* hint) {
          auto* l = static_cast<AnswerLoan*>(hint);
          if (l->lending) {
            auto it = l->lending->out.find(l->at);
            if (it != l->lending->out.end() && it->second == l) l->lending->out.erase(it);
          }
          delete l;
        },
        raw, &external);
    if (s == napi_ok) {
      loan.release();
      if (raw->lending) {
        raw->at = data;
        raw->lending->out[data] = raw;
      }
      return Napi::ArrayBuffer(env, external);
    }
  }
  Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, size);
  if (size > 0) std::memcpy(copy.Data(), data, size);
  // Memory the pool may keep goes back to it at once (it keeps none under 64 KiB).
  if (loan->lending) {
    loan->lending->pool.give(std::move(loan->bytes));
    loan->lending->pool.give(std::move(loan->index));
  }
  return copy;
}

// The ArrayBuffers of an answer's rows or devices: its buffer and the index into it (see
// dm::kIndexWords), both taken from the outcome; lent for recycle() when `lending` is given.
struct HandedRows {
  Napi::ArrayBuffer bytes;
  Napi::ArrayBuffer index;
  size_t words;
};

HandedRows handOverRows(Napi::Env env, dm::Outcome& outcome, const std::shared_ptr<AnswerLending>& lending) {
  dm::Result& r = outcome.result;
  auto bytes = std::make_unique<AnswerLoan>();
  bytes->lending = lending;
  bytes->bytes = std::move(outcome.answer);
  void* data = bytes->bytes.bytes();
  size_t size = r.rows == 0 ? 0 : bytes->bytes.capacity();
  Napi::ArrayBuffer bytesBuffer = handOver(env, std::move(bytes), data, size);
  auto index = std::make_unique<AnswerLoan>();
  index->lending = lending;
  index->index = std::move(r.index);
  void* words = index->index.data();
  size_t count = index->index.size();
  return {bytesBuffer, handOver(env, std::move(index), words, count * sizeof(uint32_t)), count};
}

// The distinct target types of an answer's rows, by the id in each row.
Napi::Array typesOf(Napi::Env env, const dm::Result& r) {
  Napi::Array types = Napi::Array::New(env, r.types.size());
  for (uint32_t i = 0; i < r.types.size(); i++) types.Set(i, Napi::String::New(env, r.types[i]));
  return types;
}

// Rows or devices as an object: { bytes, index (a Uint32Array), count, ascii }.
Napi::Object indexed(Napi::Env env, dm::Outcome& outcome) {
  const dm::Result& r = outcome.result;
  const Keys::View k = addonData(env).keys.view();
  Napi::Object o = Napi::Object::New(env);
  HandedRows rows = handOverRows(env, outcome, nullptr);
  o.Set(k[Keys::Bytes], rows.bytes);
  o.Set(k[Keys::Index], Napi::Uint32Array::New(env, rows.words, rows.index, 0));
  o.Set(k[Keys::Count], Napi::Number::New(env, r.rows));
  o.Set(k[Keys::Ascii], Napi::Boolean::New(env, r.ascii));
  return o;
}

// The rows or devices of an answer for call(): [bytes, index, types] (types only for rows),
// their count and ASCII-ness in the answer's header (words kSyncHeaderWords and after): an
// array of three, not an object whose every property a Node-API call adds.
Napi::Array flatIndexed(Napi::Env env, dm::Outcome& outcome, const std::shared_ptr<AnswerLending>& lending) {
  Napi::Array out = Napi::Array::New(env, 3);
  HandedRows rows = handOverRows(env, outcome, lending);
  out.Set(0u, rows.bytes);
  out.Set(1u, rows.index);
  if (outcome.result.payload == dm::Payload::Specs) out.Set(2u, typesOf(env, outcome.result));
  return out;
}

}  // namespace

// The numbers of a compact answer, kSyncHeaderWords of them from `h`: flags, dev (low and
// high 32 bits), openCount, eventNr, targetCount, ioctls, bufferSize, version[0..2].
static void writeHeader(double* h, const dm::Result& r) {
  h[0] = r.flags;
  h[1] = static_cast<double>(r.dev & 0xffffffffu);
  h[2] = static_cast<double>(r.dev >> 32);
  h[3] = r.openCount;
  h[4] = r.eventNr;
  h[5] = r.targetCount;
  h[6] = r.ioctls;
  h[7] = static_cast<double>(r.bufferSize);
  for (int i = 0; i < 3; i++) h[8 + i] = r.version[i];
}

// The answer's payload (rows, devices, versions, deps, a message's output), or undefined.
// Slot in the synchronous form's array (see IoctlSync), by payload: 2 + this.
static uint32_t payloadSlot(dm::Payload p) {
  switch (p) {
    case dm::Payload::Specs: return 0;
    case dm::Payload::Names: return 1;
    case dm::Payload::Versions: return 2;
    case dm::Payload::Deps: return 3;
    default: return 4;
  }
}

// A compact answer's array of `length`: [name, uuid, targets, devices, versions, deps, data],
// `payload` in its slot (the numbers go to a header).
static Napi::Array compactArray(Napi::Env env, const dm::Result& r, Napi::Value payload, uint32_t length) {
  Napi::Array out = Napi::Array::New(env, length);
  out.Set(0u, Napi::String::New(env, r.name));
  out.Set(1u, Napi::String::New(env, r.uuid));
  if (!payload.IsUndefined()) out.Set(2 + payloadSlot(r.payload), payload);
  return out;
}

// `lender`: the Control whose synchronous scratch holds the rows (runInPlace), else none.
static Napi::Value payloadOf(Napi::Env env, dm::Outcome& outcome, Control* lender) {
  const dm::Result& r = outcome.result;
  const Keys::View k = addonData(env).keys.view();
  switch (r.payload) {
    case dm::Payload::Specs: {
      if (lender) return lender->lentRows(env, r);
      Napi::Object rows = indexed(env, outcome);
      rows.Set(k[Keys::Types], typesOf(env, r));
      return rows;
    }
    case dm::Payload::Names:
      return lender ? lender->lentRows(env, r) : indexed(env, outcome);
    case dm::Payload::Versions: {
      Napi::Array list = Napi::Array::New(env, r.versions.size());
      for (uint32_t i = 0; i < r.versions.size(); i++) {
        Napi::Object e = Napi::Object::New(env);
        e.Set(k[Keys::Name], Napi::String::New(env, r.versions[i].name));
        e.Set(k[Keys::Version], versionArray(env, r.versions[i].version));
        list.Set(i, e);
      }
      return list;
    }
    case dm::Payload::Deps: {
      Napi::Array list = Napi::Array::New(env, r.deps.size());
      for (uint32_t i = 0; i < r.deps.size(); i++) list.Set(i, number(env, r.deps[i]));
      return list;
    }
    case dm::Payload::Message:
      if (r.hasData) return Napi::String::New(env, r.data);
      return env.Undefined();
    case dm::Payload::None:
      break;
  }
  return env.Undefined();
}

Napi::Object fromResult(Napi::Env env, dm::Outcome& outcome, Control* lender) {
  const dm::Result& r = outcome.result;
  const Keys::View k = addonData(env).keys.view();
  Napi::Object o = Napi::Object::New(env);
  o.Set(k[Keys::Version], versionArray(env, r.version));
  o.Set(k[Keys::Flags], Napi::Number::New(env, r.flags));
  o.Set(k[Keys::Name], Napi::String::New(env, r.name));
  o.Set(k[Keys::Uuid], Napi::String::New(env, r.uuid));
  o.Set(k[Keys::Dev], number(env, r.dev));
  o.Set(k[Keys::OpenCount], Napi::Number::New(env, r.openCount));
  o.Set(k[Keys::EventNr], Napi::Number::New(env, r.eventNr));
  o.Set(k[Keys::TargetCount], Napi::Number::New(env, r.targetCount));
  o.Set(k[Keys::Ioctls], Napi::Number::New(env, r.ioctls));
  o.Set(k[Keys::BufferSize], number(env, r.bufferSize));
  static constexpr Keys::Id kPayloadKeys[] = {Keys::Targets, Keys::Devices, Keys::Versions, Keys::Deps, Keys::Data};
  Napi::Value payload = payloadOf(env, outcome, lender);
  if (!payload.IsUndefined()) o.Set(k[kPayloadKeys[payloadSlot(r.payload)]], payload);
  return o;
}

// A thread of the addon's own with a private control fd and an eventfd to stop it. Blocking
// waits live here, never on the threadpool.
class BackgroundThread {
 public:
  virtual ~BackgroundThread() { closeFds(); }

  // Closes the private fds: once the thread has ended, never left for the garbage collector.
  void closeFds() {
    if (wake_ >= 0) ::close(wake_);
    if (fd_ >= 0) ::close(fd_);
    wake_ = -1;
    fd_ = -1;
  }

  // Asks the thread to stop; safe from any thread and more than once.
  void cancel() {
    cancelled_.store(true);
    uint64_t one = 1;
    if (wake_ >= 0) {
      ssize_t n = ::write(wake_, &one, sizeof one);
      (void)n;
    }
  }

  void join() {
    if (thread_.joinable()) thread_.join();
  }

 protected:
  // Opens the private fds, on the JavaScript thread before the thread starts; returns 0 or
  // the errno and the syscall that failed.
  int open(const std::string& path, const char** syscall) {
    fd_ = openControl(path);
    if (fd_ < 0) {
      *syscall = "open";
      return errno;
    }
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_ < 0) {
      *syscall = "eventfd";
      return errno;
    }
    return 0;
  }

  // Waits until the control fd reports an event (true) or the thread is cancelled (false).
  // errno-style failures come back in *err.
  bool waitForEvent(int* err) {
    for (;;) {
      if (cancelled_.load()) return false;
      struct pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
      int r = ::poll(fds, 2, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        *err = errno;
        return false;
      }
      if (fds[1].revents & POLLIN) return false;
      if (fds[0].revents & (POLLERR | POLLNVAL)) {
        *err = EIO;
        return false;
      }
      if (fds[0].revents & POLLIN) return true;
    }
  }

  dm::Outcome arm() {
    dm::Request req;
    req.cmd = dm::kCmdArmPoll;
    return dm::run(fd_, req, hints_, scratch_);
  }

  int fd_ = -1;
  int wake_ = -1;
  std::atomic<bool> cancelled_{false};
  dm::SizeHints hints_;
  dm::Buffer scratch_;
  std::thread thread_;
};

// waitEvent: arm, compare the device's event counter, poll; DEV_WAIT answers once it moved.
class Waiter : public BackgroundThread {
 public:
  Waiter(Control* control, Napi::Env env, dm::Request req)
      : control_(control), req_(std::move(req)), deferred_(Napi::Promise::Deferred::New(env)) {
    self_ = Napi::Persistent(control->Value());
  }

  Napi::Promise Promise() { return deferred_.Promise(); }
  std::shared_ptr<Waiter*> token() { return token_; }

  // Opens the private fds here, on the JavaScript thread; throws if that fails.
  void start(Napi::Env env) {
    const char* syscall = "open";
    int err = open(control_->path(), &syscall);
    if (err != 0) throw systemError(env, err, syscall, std::string(syscall) + " " + control_->path(), "");
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function(), "devmapper:wait", 0, 1);
    try {
      thread_ = std::thread([this] { body(); });
    } catch (const std::system_error& e) {
      // No thread: let go of what keeps the event loop alive, and say why.
      tsfn_.Release();
      closeFds();
      throw systemError(env, e.code().value(), "pthread_create", "DM_DEV_WAIT", "cannot start the wait's thread");
    }
  }

 private:
  void body() {
    for (;;) {
      dm::Outcome armed = arm();
      if (armed.err != 0) return finish(armed.err, "ioctl", dm::kCmdArmPoll, armed.detail);
      dm::Request status = req_;
      status.cmd = dm::kCmdDevStatus;
      dm::Outcome info = dm::run(fd_, status, hints_, scratch_);
      if (info.err != 0) return finish(info.err, "ioctl", dm::kCmdDevStatus, info.detail);
      if (info.result.eventNr != req_.eventNr) {
        dm::Request wait = req_;
        wait.cmd = dm::kCmdDevWait;
        outcome_ = dm::run(fd_, wait, hints_, scratch_);
        cmd_ = dm::kCmdDevWait;
        return deliver();
      }
      int pollErr = 0;
      if (!waitForEvent(&pollErr)) {
        if (pollErr != 0) return finish(pollErr, "poll", dm::kCmdDevWait, "");
        return finish(ECANCELED, "ioctl", dm::kCmdDevWait, "the wait was cancelled");
      }
    }
  }

  void finish(int err, const char* syscall, uint32_t cmd, const std::string& detail) {
    outcome_.err = err;
    outcome_.syscall = syscall;
    outcome_.detail = detail;
    cmd_ = cmd;
    deliver();
  }

  void deliver() {
    // Settles the promise on the JavaScript thread; the callback owns this object from here.
    napi_status s = tsfn_.BlockingCall(this, [](Napi::Env env, Napi::Function, Waiter* self) {
      self->settle(env);
    });
    // On napi_closing the environment is going away: the handle must not be touched again,
    // and the cleanup hook joins this thread.
    (void)s;
  }

  void settle(Napi::Env env) {
    guarded([&] {
      if (outcome_.err != 0)
        deferred_.Reject(outcomeError(env, cmd_, outcome_).Value());
      else
        deferred_.Resolve(fromResult(env, outcome_));
    });
    join();
    *token_ = nullptr;
    tsfn_.Release();
    Control* control = control_;
    control->forget(this);
    control->endWork(env);
    guarded([&] { self_.Reset(); });
    delete this;
  }

  Control* control_;
  dm::Request req_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference self_;
  Napi::ThreadSafeFunction tsfn_;
  dm::Outcome outcome_;
  uint32_t cmd_ = dm::kCmdDevWait;
  std::shared_ptr<Waiter*> token_ = std::make_shared<Waiter*>(this);
};

// watch: re-arms DM_DEV_ARM_POLL and calls onArmed after every arm; JS lists devices then.
class Watcher : public BackgroundThread, public Napi::ObjectWrap<Watcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeWatch", {InstanceMethod<&Watcher::Stop>("stop")});
  }

  explicit Watcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watcher>(info) {}

  ~Watcher() override { stopThread(); }

  // Opens the private fds (throwing on failure), then starts the thread.
  void setup(Control* control, Napi::Object controlObject, Napi::Function onArmed,
             Napi::Function onError) {
    Napi::Env env = onArmed.Env();
    const char* syscall = "open";
    int err = open(control->path(), &syscall);
    if (err != 0) throw systemError(env, err, syscall, std::string(syscall) + " " + control->path(), "");
    control_ = control;
    controlRef_ = Napi::Persistent(controlObject);
    armed_ = Napi::ThreadSafeFunction::New(env, onArmed, "devmapper:watch", 1, 1);
    errors_ = Napi::ThreadSafeFunction::New(env, onError, "devmapper:watch-error", 1, 1);
    try {
      thread_ = std::thread([this] { body(); });
    } catch (const std::system_error& e) {
      armed_.Release();
      errors_.Release();
      controlRef_.Reset();
      control_ = nullptr;
      closeFds();
      throw systemError(env, e.code().value(), "pthread_create", "DM_DEV_ARM_POLL", "cannot start the watch's thread");
    }
    started_ = true;
  }

  // Called by Control on close and at environment teardown. A Watcher constructed from
  // JavaScript without setup() has nothing to stop.
  void stopThread() {
    if (stopped_ || !started_) return;
    stopped_ = true;
    cancel();
    join();
    armed_.Release();
    errors_.Release();
    closeFds();
    if (control_) control_->forget(this);
    control_ = nullptr;
    guarded([&] { controlRef_.Reset(); });
  }

 private:
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    stopThread();
    return info.Env().Undefined();
  }

  void body() {
    for (;;) {
      dm::Outcome armed = arm();
      if (armed.err != 0) return fail(armed.err, "ioctl", dm::kCmdArmPoll, armed.detail);
      // A full queue already holds a call that will list devices after this arm: skip.
      napi_status queued = armed_.NonBlockingCall([](Napi::Env, Napi::Function cb) {
        guarded([&] { cb.Call({}); });
      });
      if (queued == napi_closing) return;
      int pollErr = 0;
      if (!waitForEvent(&pollErr)) {
        if (pollErr != 0) fail(pollErr, "poll", dm::kCmdArmPoll, "");
        return;
      }
    }
  }

  void fail(int err, const char* syscall, uint32_t cmd, const std::string& detail) {
    auto* outcome = new dm::Outcome();
    outcome->err = err;
    outcome->syscall = syscall;
    outcome->detail = detail;
    napi_status s = errors_.BlockingCall(outcome, [cmd](Napi::Env env, Napi::Function cb, dm::Outcome* o) {
      std::unique_ptr<dm::Outcome> owned(o);
      guarded([&] { cb.Call({outcomeError(env, cmd, *owned).Value()}); });
    });
    if (s != napi_ok) delete outcome;
  }

  Control* control_ = nullptr;
  Napi::ObjectReference controlRef_;
  Napi::ThreadSafeFunction armed_;
  Napi::ThreadSafeFunction errors_;
  bool stopped_ = false;
  bool started_ = false;
};

static Napi::FunctionReference* watcherConstructor(Napi::Env env) { return &addonData(env).watcher; }

Napi::Function Control::Define(Napi::Env env) {
  auto* data = new AddonData(env);
  data->watcher = Napi::Persistent(Watcher::Define(env));
  env.SetInstanceData<AddonData>(data);
  return DefineClass(env, "Control",
                     {
                         InstanceMethod<&Control::Ioctl>("ioctl"),
                         InstanceMethod<&Control::Call>("call"),
                         InstanceMethod<&Control::CallSync>("callSync"),
                         InstanceMethod<&Control::IoctlSync>("ioctlSync"),
                         InstanceMethod<&Control::WaitEvent>("waitEvent"),
                         InstanceMethod<&Control::Watch>("watch"),
                         InstanceMethod<&Control::BufferSizes>("bufferSizes"),
                         InstanceMethod<&Control::Recycle>("recycle"),
                         InstanceMethod<&Control::AnswerMemory>("answerMemory"),
                         InstanceMethod<&Control::Close>("close"),
                         InstanceMethod<&Control::CloseSync>("closeSync"),
                         InstanceAccessor<&Control::Closed>("closed"),
                     });
}

Control::Control(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Control>(info) {
  lending_ = std::make_shared<AnswerLending>();
  path_ = requirePath(info[0], "path");
  fd_ = openControl(path_);
  if (fd_ < 0) throw systemError(info.Env(), errno, "open", "open " + path_, "");
  napi_add_env_cleanup_hook(info.Env(), CleanupHookThunk, this);
  cleanupHookAdded_ = true;
}

Control::~Control() {
  stopThreads();
  stopPool();
  // ArrayBuffers still lent keep their own memory, and the pool, until they are collected.
  lending_->pool.close();
  // A lent answer still referenced from JavaScript keeps its memory (shared ownership).
  for (Lent& lent : lent_) {
    if (lent.ref != nullptr) napi_delete_reference(Env(), lent.ref);
    lent.ref = nullptr;
  }
  // The same function pointer as at add: node keys hooks by (function, argument).
  if (cleanupHookAdded_) napi_remove_env_cleanup_hook(Env(), CleanupHookThunk, this);
  if (fd_ >= 0) ::close(fd_);
}

void Control::CleanupHookThunk(void* arg) { CleanupHook(static_cast<Control*>(arg)); }

void Control::stopThreads() {
  std::set<BackgroundThread*> threads = threads_;
  for (BackgroundThread* t : threads) t->cancel();
  for (BackgroundThread* t : threads) {
    if (auto* w = dynamic_cast<Watcher*>(t)) w->stopThread();
  }
}

void Control::CleanupHook(Control* self) {
  self->cleanupHookAdded_ = false;
  self->stopThreads();
  // The environment goes: no answer will be delivered; the I/O threads end here.
  self->stopPool();
  // At teardown no settle() will run: wait for the cancelled waits' threads to end here.
  for (BackgroundThread* t : self->threads_) t->join();
}

void Control::beginWork() {
  // While answers are pending the I/O pool keeps the event loop alive, as a request would.
  if (pending_++ == 0 && pool_) pool_->ref(Env(), true);
}

void Control::endWork(Napi::Env env) {
  pending_--;
  if (pending_ == 0 && pool_) pool_->ref(env, false);
  if (pending_ == 0 && closing_ && fd_ >= 0) {
    stopPool();
    ::close(fd_);
    fd_ = -1;
    for (auto& d : closeWaiters_) guarded([&] { d.Resolve(env.Undefined()); });
    closeWaiters_.clear();
  }
}

void Control::forget(BackgroundThread* thread) { threads_.erase(thread); }

void Control::rejectIfClosed(Napi::Env env, const char* what) {
  if (closing_) {
    Napi::Error e = Napi::Error::New(env, std::string(what) + ": the control device is closed");
    e.Set("code", Napi::String::New(env, "ERR_DM_CLOSED"));
    throw e;
  }
}

dm::Request Control::commandRequest(Napi::Env env, const Napi::CallbackInfo& info, bool positional, const char* method) {
  rejectIfClosed(env, "ioctl");
  dm::Request req = positional ? argsRequest(info) : toRequest(info[0]);
  // DEV_WAIT blocks until an event: it would park an I/O thread or this one; waitEvent() owns it.
  if (req.cmd == dm::kCmdDevWait)
    throw Napi::RangeError::New(env, std::string("DM_DEV_WAIT blocks: use waitEvent() instead of ") + method + "()");
  return req;
}

Napi::Value Control::Ioctl(const Napi::CallbackInfo& info) {
  return submit(info.Env(), commandRequest(info.Env(), info, false, "ioctl"), false);
}

Napi::Value Control::Call(const Napi::CallbackInfo& info) {
  return submit(info.Env(), commandRequest(info.Env(), info, true, "call"), true);
}

Napi::Value Control::submit(Napi::Env env, dm::Request req, bool compact) {
  if (!pool_) pool_ = std::make_unique<IoPool>(this, &Control::Deliver);
  uint64_t id = nextIoctl_++;
  uint32_t cmd = req.cmd;
  try {
    pool_->submit(env, id, fd_, &hints_, &lending_->pool, std::move(req));
  } catch (const std::system_error& e) {
    throw systemError(env, e.code().value(), "pthread_create", commandName(cmd), "cannot start an I/O thread");
  }
  auto deferred = Napi::Promise::Deferred::New(env);
  if (ioctls_.empty()) Ref();
  ioctls_.emplace(id, PendingIoctl{deferred, cmd, compact});
  beginWork();
  return deferred.Promise();
}

void Control::Deliver(Napi::Env env, void* owner, std::vector<IoPool::Done>& batch) {
  auto* self = static_cast<Control*>(owner);
  // The numbers of the group's compact answers, all in one Float64Array (made when the first
  // is settled): a typed array per group, not a dozen properties per answer.
  Napi::Float64Array header;
  size_t headers = 0;
  bool settled = false;
  for (IoPool::Done& done : batch) {
    auto it = self->ioctls_.find(done.id);
    if (it == self->ioctls_.end()) continue;
    PendingIoctl pending = std::move(it->second);
    self->ioctls_.erase(it);
    settled = true;
    guarded([&] {
      if (done.outcome.err != 0) {
        pending.deferred.Reject(outcomeError(env, done.cmd, done.outcome).Value());
      } else if (pending.compact) {
        if (header.IsEmpty()) header = Napi::Float64Array::New(env, batch.size() * kCallHeaderWords);
        size_t at = headers++ * kCallHeaderWords;
        const dm::Result& r = done.outcome.result;
        double* h = header.Data() + at;
        writeHeader(h, r);
        h[kSyncHeaderWords] = r.rows;
        h[kSyncHeaderWords + 1] = r.ascii ? 1 : 0;
        bool rows = r.payload == dm::Payload::Specs || r.payload == dm::Payload::Names;
        Napi::Array out = compactArray(env, r, rows ? flatIndexed(env, done.outcome, self->lending_) : payloadOf(env, done.outcome, nullptr), 9);
        out.Set(7u, header);
        out.Set(8u, Napi::Number::New(env, static_cast<double>(at)));
        pending.deferred.Resolve(out);
      } else {
        pending.deferred.Resolve(fromResult(env, done.outcome));
      }
    });
    self->endWork(env);
  }
  // The last answer in flight is delivered: the Control may be collected from now on.
  if (settled && self->ioctls_.empty()) guarded([&] { self->Unref(); });
}

void Control::stopPool() {
  if (pool_) pool_->stop();
}

Napi::Object Control::lentRows(Napi::Env env, const dm::Result& r) {
  const Keys::View k = addonData(env).keys.view();
  SyncScratch& s = *sync_;
  bool specs = r.payload == dm::Payload::Specs;
  RowsMemo& memo = rowsMemo_[specs ? 0 : 1];
  uint64_t before = lentGeneration_;
  Napi::ArrayBuffer bytes = lendView(env, lent_[0], s.buffer.bytes(), r.rows == 0 ? 0 : s.buffer.capacity());
  Napi::ArrayBuffer index = lendView(env, lent_[1], s.index.data(), s.index.capacity() * sizeof(uint32_t));
  if (!memo.object.IsEmpty() && lentGeneration_ == before && memo.generation == before &&
      memo.count == r.rows && memo.ascii == r.ascii && (!specs || memo.types == r.types))
    return memo.object.Value();
  Napi::Object o = Napi::Object::New(env);
  o.Set(k[Keys::Bytes], bytes);
  o.Set(k[Keys::Index], Napi::Uint32Array::New(env, s.index.size(), index, 0));
  o.Set(k[Keys::Count], Napi::Number::New(env, r.rows));
  o.Set(k[Keys::Ascii], Napi::Boolean::New(env, r.ascii));
  if (specs) {
    o.Set(k[Keys::Types], typesOf(env, r));
    memo.types = r.types;
  }
  memo.object = Napi::Persistent(o);
  memo.generation = lentGeneration_;
  memo.count = r.rows;
  memo.ascii = r.ascii;
  memo.made++;
  return o;
}

Napi::Value Control::compactOf(Napi::Env env, dm::Outcome& outcome) {
  const dm::Result& r = outcome.result;
  bool rows = r.payload == dm::Payload::Specs || r.payload == dm::Payload::Names;
  bool message = r.payload == dm::Payload::Message;
  bool keep = rows || r.payload == dm::Payload::None || (message && !r.secure);
  CompactMemo& m = compactMemo_;
  // Rows are lent first: the object they come in says whether the answer is the same.
  Napi::Value payload = message ? env.Undefined() : payloadOf(env, outcome, this);
  uint64_t made = rows ? rowsMemo_[r.payload == dm::Payload::Specs ? 0 : 1].made : 0;
  if (keep && !m.array.IsEmpty() && m.payload == r.payload && m.rows == made && m.name == r.name &&
      m.uuid == r.uuid && m.hasData == r.hasData && m.data == r.data)
    return m.array.Value();
  if (message) payload = payloadOf(env, outcome, this);
  Napi::Array out = compactArray(env, r, payload, 7);
  if (keep) {
    m.array = Napi::Persistent(static_cast<Napi::Object>(out));
    m.name = r.name;
    m.uuid = r.uuid;
    m.payload = r.payload;
    m.rows = made;
    m.hasData = r.hasData;
    m.data = r.data;
  } else {
    m.array.Reset();
  }
  return out;
}

Napi::ArrayBuffer Control::lendView(Napi::Env env, Lent& lent, void* data, size_t size) {
  if (size == 0 || data == nullptr) return Napi::ArrayBuffer::New(env, 0);
  if (lent.ref != nullptr && lent.data == data && lent.size == size) {
    napi_value kept;
    if (napi_get_reference_value(env, lent.ref, &kept) == napi_ok && kept != nullptr)
      return Napi::ArrayBuffer(env, kept);
  }
  // The memory under the old view is not this: it reads as empty from now on.
  if (lent.ref != nullptr) {
    napi_value old;
    if (napi_get_reference_value(env, lent.ref, &old) == napi_ok && old != nullptr) {
      napi_status s = napi_detach_arraybuffer(env, old);
      (void)s;
    }
    napi_delete_reference(env, lent.ref);
    lent.ref = nullptr;
  }
  auto* hold = new std::shared_ptr<SyncScratch>(sync_);
  napi_value external;
  napi_status s = napi_create_external_arraybuffer(
      env, data, size, [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<SyncScratch>*>(hint); },
      hold, &external);
  if (s != napi_ok) {
    // A runtime that refuses external buffers gets a copy, made anew each call.
    delete hold;
    lentGeneration_++;
    Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, size);
    std::memcpy(copy.Data(), data, size);
    return copy;
  }
  lentGeneration_++;
  if (napi_create_reference(env, external, 1, &lent.ref) == napi_ok) {
    lent.data = data;
    lent.size = size;
  } else {
    lent.ref = nullptr;
  }
  return Napi::ArrayBuffer(env, external);
}

void Control::reclaim(napi_env env, bool all) {
  SyncScratch& s = *sync_;
  const void* now[2] = {s.buffer.bytes(), s.index.data()};
  size_t sizes[2] = {s.buffer.capacity(), s.index.capacity() * sizeof(uint32_t)};
  for (size_t i = 0; i < 2; i++) {
    Lent& lent = lent_[i];
    if (lent.ref == nullptr || (!all && lent.data == now[i] && lent.size == sizes[i])) continue;
    napi_value buffer;
    if (napi_get_reference_value(env, lent.ref, &buffer) == napi_ok && buffer != nullptr) {
      // A detached ArrayBuffer reads as empty: JavaScript never sees the memory again.
      napi_status st = napi_detach_arraybuffer(env, buffer);
      (void)st;
    }
    napi_delete_reference(env, lent.ref);
    lent = Lent{};
    lentGeneration_++;
  }
}

// The same command on the calling thread: no thread hop, for callers whose work is
// microseconds (a sync API). Errors are thrown, not rejected.
Napi::Value Control::IoctlSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  dm::Request req = commandRequest(env, info, false, "ioctlSync");
  // The compact form: numbers in the caller's Float64Array, strings and payload in a short
  // array (a dozen property stores fewer: most of the addon's own cost of a small answer).
  bool compact = info.Length() >= 2 && !info[1].IsUndefined();
  return runSync(env, req, compact ? headerArg(env, info[1]) : nullptr);
}

Napi::Value Control::CallSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double* header = headerArg(env, info[7]);
  return runSync(env, commandRequest(env, info, true, "callSync"), header);
}

double* Control::headerArg(Napi::Env env, const Napi::Value& value) {
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type;
  if (!value.IsTypedArray() ||
      napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_float64_array || length < kSyncHeaderWords)
    throw typeError(env, "a Float64Array of " + std::to_string(kSyncHeaderWords) + " numbers", "header", value);
  return static_cast<double*>(data);
}

Napi::Value Control::runSync(Napi::Env env, const dm::Request& req, double* h) {
  dm::Outcome outcome = dm::runInPlace(fd_, req, hints_, sync_->buffer, sync_->index);
  // Where the buffer grew or went, JavaScript's views of the old memory go with it (no
  // JavaScript ran in between).
  reclaim(env, false);
  if (outcome.err != 0) throw outcomeError(env, req.cmd, outcome);
  if (h == nullptr) return fromResult(env, outcome, this);
  writeHeader(h, outcome.result);
  return compactOf(env, outcome);
}

void Control::checkThreadBound(Napi::Env env, const char* command) {
  if (threads_.size() >= kMaxBackgroundThreads) {
    throw systemError(env, EAGAIN, "pthread_create", command,
                      "more than " + std::to_string(kMaxBackgroundThreads) +
                          " waits and watches in flight on one control");
  }
}

Napi::Value Control::WaitEvent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rejectIfClosed(env, "DM_DEV_WAIT");
  dm::Request req = toRequest(info[0]);
  checkThreadBound(env, "DM_DEV_WAIT");
  auto waiter = std::make_unique<Waiter>(this, env, std::move(req));
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("promise", waiter->Promise());
  // The waiter frees itself when it settles (on this thread); the token is cleared then, so a
  // later cancel() touches nothing.
  std::shared_ptr<Waiter*> token = waiter->token();
  handle.Set("cancel", Napi::Function::New(env, [token](const Napi::CallbackInfo& ci) {
               if (*token != nullptr) (*token)->cancel();
               return ci.Env().Undefined();
             }));
  waiter->start(env);
  // Running now: it settles and frees itself through its thread-safe function.
  Waiter* running = waiter.release();
  threads_.insert(running);
  beginWork();
  return handle;
}

Napi::Value Control::Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw typeError(env, "a function", "onArmed", info[0]);
  if (!info[1].IsFunction()) throw typeError(env, "a function", "onError", info[1]);
  rejectIfClosed(env, "DM_DEV_ARM_POLL");
  checkThreadBound(env, "DM_DEV_ARM_POLL");
  Napi::Object handle = watcherConstructor(env)->New({});
  Watcher* watcher = Napi::ObjectWrap<Watcher>::Unwrap(handle);
  watcher->setup(this, Value(), info[0].As<Napi::Function>(), info[1].As<Napi::Function>());
  threads_.insert(watcher);
  return handle;
}

Napi::Value Control::BufferSizes(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), dm::kCommandCount);
  for (uint32_t i = 0; i < dm::kCommandCount; i++) a.Set(i, number(info.Env(), hints_.largest(i)));
  return a;
}

Napi::Value Control::Recycle(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  AnswerLending& lending = *lending_;
  for (size_t i = 0; i < info.Length(); i++) {
    if (!info[i].IsArrayBuffer()) throw Napi::TypeError::New(info.Env(), "recycle() takes the ArrayBuffers of an answer of call()");
    napi_value buffer = info[i];
    void* data = nullptr;
    if (napi_get_arraybuffer_info(env, buffer, &data, nullptr) != napi_ok) continue;
    auto it = lending.out.find(data);
    // Copied (small), detached already, or not lent by call(): nothing to give back.
    if (data == nullptr || it == lending.out.end()) continue;
    AnswerLoan* loan = it->second;
    // The memory leaves the loan before the ArrayBuffer lets go of it (its finalizer, which
    // frees the loan, may run then).
    dm::Buffer bytes = std::move(loan->bytes);
    std::vector<uint32_t> index = std::move(loan->index);
    if (napi_detach_arraybuffer(env, buffer) != napi_ok) {
      loan->bytes = std::move(bytes);
      loan->index = std::move(index);
      continue;
    }
    lending.out.erase(data);
    if (bytes.capacity() > 0) lending.pool.give(std::move(bytes));
    if (index.capacity() > 0) lending.pool.give(std::move(index));
  }
  return info.Env().Undefined();
}

Napi::Value Control::AnswerMemory(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("reused", number(info.Env(), lending_->pool.reused()));
  o.Set("keptBytes", number(info.Env(), lending_->pool.keptBytes()));
  o.Set("lent", number(info.Env(), lending_->out.size()));
  return o;
}

Napi::Value Control::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto deferred = Napi::Promise::Deferred::New(env);
  closing_ = true;
  stopThreads();
  lending_->pool.close();
  reclaim(env, true);
  sync_->buffer.release();
  std::vector<uint32_t>().swap(sync_->index);
  if (pending_ == 0) {
    stopPool();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    deferred.Resolve(env.Undefined());
  } else {
    closeWaiters_.push_back(deferred);
  }
  return deferred.Promise();
}

// Closes at once: for a control used only synchronously. With asynchronous work in flight
// it refuses (the fd must outlive that work): use close().
Napi::Value Control::CloseSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (pending_ != 0) throw Napi::Error::New(env, "closeSync: asynchronous work is in flight on this control; use close()");
  closing_ = true;
  stopThreads();
  stopPool();
  lending_->pool.close();
  reclaim(env, true);
  sync_->buffer.release();
  std::vector<uint32_t>().swap(sync_->index);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return env.Undefined();
}

Napi::Value Control::Closed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), closing_);
}

}  // namespace devmapper
