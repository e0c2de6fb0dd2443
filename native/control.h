// Control: one open /dev/mapper/control, exposed to JavaScript. Each asynchronous ioctl runs
// on the addon's I/O threads (io_pool.h), never Node's threadpool; ioctlSync runs on the
// calling thread; waits and the event watch run on threads of their own.
#pragma once

#include <napi.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "dm_ioctl.h"
#include "io_pool.h"

namespace devmapper {

class BackgroundThread;
struct AnswerLending;

class Control : public Napi::ObjectWrap<Control> {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit Control(const Napi::CallbackInfo& info);
  ~Control() override;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  dm::SizeHints& hints() { return hints_; }

  // Work in flight: close() resolves once it drops to zero.
  void beginWork();
  void endWork(Napi::Env env);
  void forget(BackgroundThread* thread);

  // The synchronous calls' ioctl buffer and index, reused from call to call (JavaScript
  // thread only). An answer with rows is lent to JavaScript where it lies: through one
  // ArrayBuffer over the buffer and one over the index, made once and kept from call to call
  // (so that a small answer costs no allocation outside V8's heap), detached when the memory
  // under them moves or goes (a buffer grown, a huge one freed, close). They share its
  // ownership, so that the memory outlives a Control collected before them. The next call
  // overwrites what they show.
  struct SyncScratch {
    dm::Buffer buffer;
    std::vector<uint32_t> index;
  };
  // The rows (with their types) or devices of the last synchronous answer, lent where they
  // lie (see above): the object made for the answer before when this one reads the same
  // (same buffers, count and types), else a new one.
  Napi::Object lentRows(Napi::Env env, const dm::Result& r);

 private:
  // The request of ioctl()/ioctlSync() (an object) or call()/callSync() (`positional`
  // arguments), for `method`: refused after close, checked, and never DEV_WAIT.
  dm::Request commandRequest(Napi::Env env, const Napi::CallbackInfo& info, bool positional, const char* method);
  Napi::Value Ioctl(const Napi::CallbackInfo& info);
  Napi::Value Call(const Napi::CallbackInfo& info);
  // Hands a request to the I/O threads; the promise settles when the answer comes back, as
  // an object or (`compact`) in the compact form of call().
  Napi::Value submit(Napi::Env env, dm::Request req, bool compact);
  Napi::Value IoctlSync(const Napi::CallbackInfo& info);
  Napi::Value CallSync(const Napi::CallbackInfo& info);
  // The header a compact answer's numbers go to (a TypeError unless a Float64Array of
  // kSyncHeaderWords or more).
  static double* headerArg(Napi::Env env, const Napi::Value& value);
  // Runs a request on this thread: the answer in the compact form into `header`, or, without
  // one, as an object.
  Napi::Value runSync(Napi::Env env, const dm::Request& req, double* header);
  Napi::Value WaitEvent(const Napi::CallbackInfo& info);
  Napi::Value Watch(const Napi::CallbackInfo& info);
  Napi::Value BufferSizes(const Napi::CallbackInfo& info);
  Napi::Value Recycle(const Napi::CallbackInfo& info);
  Napi::Value AnswerMemory(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value CloseSync(const Napi::CallbackInfo& info);
  Napi::Value Closed(const Napi::CallbackInfo& info);

  void rejectIfClosed(Napi::Env env, const char* what);
  // Each wait and watch has a thread and two fds of its own: at most this many at once.
  static constexpr size_t kMaxBackgroundThreads = 256;
  void checkThreadBound(Napi::Env env, const char* command);
  void stopThreads();
  static void CleanupHook(Control* self);
  static void CleanupHookThunk(void* arg);

  std::string path_;
  int fd_ = -1;
  bool closing_ = false;
  int pending_ = 0;
  std::vector<Napi::Promise::Deferred> closeWaiters_;
  dm::SizeHints hints_;
  std::shared_ptr<SyncScratch> sync_ = std::make_shared<SyncScratch>();
  // An ArrayBuffer lent over sync_'s memory, and the memory it covers.
  struct Lent {
    napi_ref ref = nullptr;
    const void* data = nullptr;
    size_t size = 0;
  };
  Lent lent_[2];
  // Counts the ArrayBuffers lent and detached: what was made from them is current while it
  // stays the same.
  uint64_t lentGeneration_ = 0;
  // The last object lentRows made for rows (0) and for devices (1), and what it reads.
  struct RowsMemo {
    Napi::ObjectReference object;
    uint64_t generation = 0;
    uint32_t count = 0;
    bool ascii = false;
    std::vector<std::string> types;
    // Counts the objects made: names the one a compact answer holds.
    uint64_t made = 0;
  };
  RowsMemo rowsMemo_[2];
  // The last compact answer (the array callSync returns) and what it holds: returned again
  // when the next answer holds the same, so that a repeated call makes no JavaScript values.
  // Arrays with versions or deps, and the output of a message sent with SECURE_DATA (never
  // kept in memory), are not kept.
  struct CompactMemo {
    Napi::ObjectReference array;
    std::string name;
    std::string uuid;
    dm::Payload payload = dm::Payload::None;
    uint64_t rows = 0;
    bool hasData = false;
    std::string data;
  };
  CompactMemo compactMemo_;
  // The compact answer's array: [name, uuid, targets, devices, versions, deps, data].
  Napi::Value compactOf(Napi::Env env, dm::Outcome& outcome);
  // The ArrayBuffer over `size` bytes at `data` of sync_: the one lent before when it covers
  // exactly them, else a new one.
  Napi::ArrayBuffer lendView(Napi::Env env, Lent& lent, void* data, size_t size);
  // Detaches the ArrayBuffers lent from sync_ whose memory moved or went (`all`: every one,
  // before the memory is freed): JavaScript never reads memory the addon no longer lends.
  void reclaim(napi_env env, bool all);
  std::set<BackgroundThread*> threads_;
  bool cleanupHookAdded_ = false;

  // Asynchronous ioctls: run by the pool, settled when their answers come back.
  // While any is in flight, the Control holds a reference to itself (one for all of them,
  // not one per call): it is not collected before their answers are delivered.
  struct PendingIoctl {
    Napi::Promise::Deferred deferred;
    uint32_t cmd;
    bool compact;  // answered as call() answers
  };
  static void Deliver(Napi::Env env, void* owner, std::vector<IoPool::Done>& batch);
  // The large answers of call() lent to JavaScript, and the memory given back by recycle()
  // for the I/O threads to copy the next ones into (see control.cc). Shared with every
  // ArrayBuffer lent, which may outlive the Control.
  std::shared_ptr<AnswerLending> lending_;
  void stopPool();
  std::unique_ptr<IoPool> pool_;
  std::map<uint64_t, PendingIoctl> ioctls_;
  uint64_t nextIoctl_ = 1;
};

// Builds a dm::Request from a JavaScript request object (TypeError/RangeError on bad shape).
dm::Request toRequest(const Napi::Value& value);
// The kernel's answer as a plain JavaScript object (rows and devices take the answer's buffer).
Napi::Object fromResult(Napi::Env env, dm::Outcome& outcome, Control* lender = nullptr);

}  // namespace devmapper
