// The system calls of udev cooperation, one each: SysV semaphores (a udev cookie is one, see
// ts/udev.ts for what the values mean) and mknod of a block node (ts/nodes.ts). The waits for
// a semaphore to reach zero run on the calling thread (semWaitZeroSync) or on a thread of
// their own (semWaitZero), never on Node's threadpool.
#include "udev.h"

#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <set>
#include <string>
#include <system_error>
#include <thread>

#include "convert.h"
#include "errors.h"

namespace devmapper {

namespace {

// semctl's fourth argument (the caller defines it: sys/sem.h does not).
union SemArg {
  int val;
  struct semid_ds* buf;
  unsigned short* array;
};

Napi::Error semError(Napi::Env env, int err, const char* syscall, int semid) {
  return systemError(env, err, syscall, std::string(syscall) + " semaphore " + std::to_string(semid), "");
}

int requireSemid(const Napi::Value& v) { return static_cast<int>(requireInteger(v, "semid", INT_MAX)); }

// The semaphores this environment made and has not removed. JavaScript removes each after its
// wait; an environment that goes first (a worker terminated between the cookie's creation and
// the end of its wait) has them removed by its cleanup hook, so that no cookie stays in the
// system until `dmsetup udevcomplete_all`. Used on the environment's own thread only.
struct Cookies {
  std::set<int> semids;
};

Cookies& cookiesOf(const Napi::CallbackInfo& info) { return *static_cast<Cookies*>(info.Data()); }

// semget(key, 1, IPC_CREAT | IPC_EXCL | 0600), then SETVAL `value`; the semaphore is removed
// again if SETVAL fails. EEXIST: the key is taken.
Napi::Value SemCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  key_t key = static_cast<key_t>(requireInteger(info[0], "key", INT_MAX));
  int value = static_cast<int>(requireInteger(info[1], "value", SHRT_MAX));
  int semid = ::semget(key, 1, IPC_CREAT | IPC_EXCL | 0600);
  if (semid < 0) throw systemError(env, errno, "semget", "semget key " + std::to_string(key), "");
  SemArg arg;
  arg.val = value;
  if (::semctl(semid, 0, SETVAL, arg) < 0) {
    int err = errno;
    ::semctl(semid, 0, IPC_RMID);
    throw semError(env, err, "semctl", semid);
  }
  cookiesOf(info).semids.insert(semid);
  return Napi::Number::New(env, semid);
}

// semop(+delta or -delta, IPC_NOWAIT): EAGAIN when a decrement would go below zero.
Napi::Value SemAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int semid = requireSemid(info[0]);
  if (!info[1].IsNumber()) throw typeError(env, "an integer from -1 to 1", "delta", info[1]);
  double d = info[1].As<Napi::Number>().DoubleValue();
  if (d != 1 && d != -1) throw Napi::RangeError::New(env, "Expected -1 or 1 for delta but received " + info[1].ToString().Utf8Value());
  struct sembuf op = {0, static_cast<short>(d), IPC_NOWAIT};
  int r;
  do {
    r = ::semop(semid, &op, 1);
  } while (r < 0 && errno == EINTR);
  if (r < 0) throw semError(env, errno, "semop", semid);
  return env.Undefined();
}

Napi::Value SemValue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int semid = requireSemid(info[0]);
  int v = ::semctl(semid, 0, GETVAL);
  if (v < 0) throw semError(env, errno, "semctl", semid);
  return Napi::Number::New(env, v);
}

Napi::Value SemRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int semid = requireSemid(info[0]);
  int r = ::semctl(semid, 0, IPC_RMID);
  int err = errno;
  // Gone either way (EINVAL, EIDRM: removed already): never removed again at teardown.
  if (r == 0 || err == EINVAL || err == EIDRM) cookiesOf(info).semids.erase(semid);
  if (r < 0) throw semError(env, err, "semctl", semid);
  return env.Undefined();
}

using Clock = std::chrono::steady_clock;

// Waits for the semaphore to be zero until `deadline`, in slices of at most `slice` (so that a
// caller can stop between them); returns 0, or the errno: EAGAIN when the deadline passed,
// EIDRM when the semaphore was removed meanwhile.
int waitZero(int semid, Clock::time_point deadline, std::chrono::milliseconds slice, const std::atomic<bool>* stop) {
  struct sembuf op = {0, 0, 0};
  for (;;) {
    if (stop != nullptr && stop->load()) return ECANCELED;
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    if (left.count() <= 0) return EAGAIN;
    if (left > slice) left = slice;
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(left.count() / 1000000000);
    ts.tv_nsec = static_cast<long>(left.count() % 1000000000);
    if (::semtimedop(semid, &op, 1, &ts) == 0) return 0;
    if (errno != EINTR && errno != EAGAIN) return errno;
  }
}

Clock::time_point deadlineOf(const Napi::Value& v) {
  // At most a day: a wait is always bounded.
  uint64_t ms = requireInteger(v, "timeoutMs", 86400000);
  return Clock::now() + std::chrono::milliseconds(ms);
}

Napi::Value SemWaitZeroSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int semid = requireSemid(info[0]);
  Clock::time_point deadline = deadlineOf(info[1]);
  int err = waitZero(semid, deadline, std::chrono::hours(24), nullptr);
  if (err != 0) throw semError(env, err, "semtimedop", semid);
  return env.Undefined();
}

// One asynchronous wait: a thread of its own and a thread-safe function that calls `done`
// (a callback, not a promise: a promise still pending when the environment goes, a worker
// terminated mid-wait, would leak its deferred, which Node-API can no longer settle then).
// The thread waits in slices of 50 ms, so that the environment's teardown stops it within one;
// the finalizer joins it. The semaphore of a wait whose end never reached JavaScript goes with
// the environment's other cookies (see Cookies).
class SemWaiter {
 public:
  static Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int semid = requireSemid(info[0]);
    Clock::time_point deadline = deadlineOf(info[1]);
    if (!info[2].IsFunction()) throw typeError(env, "a function", "done", info[2]);
    auto* w = new SemWaiter(semid, deadline);
    w->tsfn_ = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "devmapper:udev-wait", 0, 1, w,
                                             [](Napi::Env, SemWaiter* self) {
                                               self->stop_.store(true);
                                               if (self->thread_.joinable()) self->thread_.join();
                                               delete self;
                                             });
    try {
      w->thread_ = std::thread([w] { w->body(); });
    } catch (const std::system_error& e) {
      w->tsfn_.Release();  // the finalizer frees it; there is no thread to join
      throw systemError(env, e.code().value(), "pthread_create", "cannot start the udev wait's thread", "");
    }
    return env.Undefined();
  }

 private:
  SemWaiter(int semid, Clock::time_point deadline) : semid_(semid), deadline_(deadline) {}

  void body() {
    err_ = waitZero(semid_, deadline_, std::chrono::milliseconds(50), &stop_);
    napi_status s = tsfn_.BlockingCall([this](Napi::Env env, Napi::Function done) {
      guarded([&] {
        Napi::Value error = err_ == 0 ? env.Null() : semError(env, err_, "semtimedop", semid_).Value();
        done.Call({error});
      });
    });
    // napi_closing: the environment is going (its finalizer joins this thread): hands off.
    if (s != napi_closing) tsfn_.Release();
  }

  int semid_;
  Clock::time_point deadline_;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int err_ = 0;
};

// mknod(path, S_IFBLK | mode, makedev(major, minor)); the process's umask applies. Through
// syscall(2): glibc's own mknod symbol is 2.33's (before it, an inline over __xmknod), and the
// addon needs nothing newer than 2.28.
Napi::Value MknodBlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = requirePath(info[0], "path");
  unsigned major = static_cast<unsigned>(requireInteger(info[1], "major", 0xfff));
  unsigned minor = static_cast<unsigned>(requireInteger(info[2], "minor", 0xfffff));
  mode_t mode = static_cast<mode_t>(requireInteger(info[3], "mode", 07777));
  if (::syscall(SYS_mknodat, AT_FDCWD, path.c_str(), S_IFBLK | mode, makedev(major, minor)) < 0) {
    int err = errno;
    Napi::Error e = systemError(env, err, "mknod", "mknod " + path, "");
    e.Set("path", Napi::String::New(env, path));
    throw e;
  }
  return env.Undefined();
}

}  // namespace

void InitUdev(Napi::Env env, Napi::Object exports) {
  auto* cookies = new Cookies();
  napi_status st = napi_add_env_cleanup_hook(
      env,
      [](void* arg) {
        auto* c = static_cast<Cookies*>(arg);
        for (int semid : c->semids) ::semctl(semid, 0, IPC_RMID);
        delete c;
      },
      cookies);
  if (st != napi_ok) {
    delete cookies;
    throw Napi::Error::New(env, "cannot register the udev cookies' cleanup");
  }
  exports.Set("semCreate", Napi::Function::New(env, SemCreate, "semCreate", cookies));
  exports.Set("semAdd", Napi::Function::New(env, SemAdd, "semAdd"));
  exports.Set("semValue", Napi::Function::New(env, SemValue, "semValue"));
  exports.Set("semRemove", Napi::Function::New(env, SemRemove, "semRemove", cookies));
  exports.Set("semWaitZeroSync", Napi::Function::New(env, SemWaitZeroSync, "semWaitZeroSync"));
  exports.Set("semWaitZero", Napi::Function::New(env, SemWaiter::Start, "semWaitZero"));
  exports.Set("mknodBlock", Napi::Function::New(env, MknodBlock, "mknodBlock"));
}

}  // namespace devmapper
