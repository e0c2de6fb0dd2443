// The device-mapper ioctl core: builds dm_ioctl request buffers, runs them with
// grow-and-retry, and unpacks the kernel's answer with every offset bounds-checked.
// Plain C++ (no Node-API), so it can be fuzzed and benchmarked on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace dm {

constexpr uint32_t kCommandCount = 18;
constexpr size_t kHeaderSize = 312;       // sizeof(struct dm_ioctl)
constexpr size_t kSpecSize = 40;          // sizeof(struct dm_target_spec)
constexpr size_t kNameMax = 127;          // DM_NAME_LEN - 1
constexpr size_t kUuidMax = 128;          // DM_UUID_LEN - 1
constexpr size_t kTypeMax = 15;           // DM_MAX_TYPE_NAME - 1
constexpr size_t kInitialBufferSize = 16 * 1024;
constexpr size_t kMaxBufferSize = 256u * 1024 * 1024;

// The command numbers (the kernel's DM_*_CMD in dm-ioctl.h), spelled out so the addon builds
// against headers older than the commands it knows.
enum Cmd : uint32_t {
  kCmdVersion = 0,
  kCmdRemoveAll = 1,
  kCmdListDevices = 2,
  kCmdDevCreate = 3,
  kCmdDevRemove = 4,
  kCmdDevRename = 5,
  kCmdDevSuspend = 6,
  kCmdDevStatus = 7,
  kCmdDevWait = 8,
  kCmdTableLoad = 9,
  kCmdTableClear = 10,
  kCmdTableDeps = 11,
  kCmdTableStatus = 12,
  kCmdListVersions = 13,
  kCmdTargetMsg = 14,
  kCmdDevSetGeometry = 15,
  kCmdArmPoll = 16,
  kCmdGetTargetVersion = 17,
};

struct CommandInfo {
  const char* name;      // "DM_DEV_REMOVE"
  unsigned long request; // the _IOWR number
  uint32_t minMinor;     // minimum interface minor version the command needs
  uint32_t flags;        // the dm_ioctl flags the kernel reads for this command
  bool eventNr;          // whether the kernel reads event_nr (a udev cookie, or DEV_WAIT's)
  bool retryWhenFull;    // read-only with an output payload: safe to send again, larger
};

// nullptr for a command number outside 0..17.
const CommandInfo* commandInfo(uint32_t cmd);

// The interface minor to send: the larger of the command's and the flags' minimums.
uint32_t minimumMinor(uint32_t cmd, uint32_t flags);

struct TargetSpec {
  uint64_t start = 0;
  uint64_t length = 0;
  std::string type;
  std::string params;
};

struct TargetVersion {
  std::string name;
  uint32_t version[3] = {0, 0, 0};
};

struct Request {
  uint32_t cmd = 0;
  uint32_t flags = 0;
  std::string name;
  std::string uuid;
  uint64_t dev = 0;
  uint32_t eventNr = 0;
  std::vector<TargetSpec> targets;  // TABLE_LOAD
  bool hasData = false;             // DEV_RENAME, DEV_SET_GEOMETRY
  std::string data;
  bool hasMessage = false;          // TARGET_MSG
  uint64_t sector = 0;
  std::string message;
  // TARGET_MSG only: the message has no side effect, so it may be sent again with a larger
  // buffer when its answer did not fit. Every other command's retry is decided by the core.
  bool repeatable = false;

  Request() = default;
  Request(const Request&) = default;
  Request(Request&&) = default;
  Request& operator=(const Request&) = default;
  Request& operator=(Request&&) = default;
  // Every copy is wiped when it goes: any of them may hold a key.
  ~Request() { wipe(); }

  // Overwrites every string that may hold a secret (SECURE_DATA requests).
  void wipe();
};

enum class Payload { None, Specs, Names, Versions, Deps, Message };

// Words per row in Result::index. A row of TABLE_STATUS / DEV_WAIT (Specs):
//   start (low, high), length (low, high), status, type id (into Result::types),
//   params offset, params length (bytes, the NUL excluded).
// A device of LIST_DEVICES (Names):
//   dev (low, high), name offset, name length, event_nr present (0/1), event_nr,
//   uuid offset (0: no uuid), uuid length.
// Every offset and length lies inside the answer buffer, and a NUL follows each string.
constexpr size_t kIndexWords = 8;

// The ioctl buffer: 8-aligned, reused from call to call (packInto() clears it for each
// request), wiped on release when it held secrets. Movable: an answer with rows keeps its
// buffer. It knows how far its bytes may be other than zero, so that clearing a buffer of
// 16 KiB after an answer of a few hundred bytes clears those few hundred.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept;
  ~Buffer() { release(); }

  // Room for n bytes (kept when there is room already; old contents are not kept), zeroed
  // when newly allocated unless the caller overwrites all of it at once (`zero` false).
  void reserve(size_t n, bool zero = true);
  // Frees the memory, wiped first when it held secrets.
  void release();
  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(words_); }
  const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(words_); }
  size_t capacity() const { return capacity_; }
  // Marks the contents as secret until release (or until wiped).
  void markSecret() { secret_ = true; }
  bool secret() const { return secret_; }
  // Overwrites the first n bytes; clears the mark when n covers the whole buffer.
  void wipe(size_t n);
  // Makes the first n bytes zero (only those that may not be already).
  void clear(size_t n);
  // Makes the bytes from n on zero (only those that may not be already).
  void clearFrom(size_t n);
  // Says that the first n bytes may have been written (by pack, or by the kernel's answer).
  void touched(size_t n) {
    if (n > dirty_) dirty_ = n < capacity_ ? n : capacity_;
  }
  // How far the bytes may be other than zero.
  size_t dirty() const { return dirty_; }

 private:
  uint64_t* words_ = nullptr;
  size_t capacity_ = 0;
  // Every byte from here on is zero.
  size_t dirty_ = 0;
  bool secret_ = false;
};

// Which payload the kernel answers with for a command.
Payload outputPayload(uint32_t cmd);

struct Result {
  Result() = default;
  Result(const Result&) = default;
  Result(Result&&) = default;
  Result& operator=(const Result&) = default;
  Result& operator=(Result&&) = default;
  // An answer to a SECURE_DATA request (a table read back with its key) is wiped when it goes.
  ~Result() {
    if (secure) wipe();
  }
  // Overwrites the strings of the answer that may hold a secret (message output; table params
  // live in the answer buffer, which wipes itself).
  void wipe();

  bool secure = false;
  uint32_t version[3] = {0, 0, 0};
  uint32_t flags = 0;
  std::string name;
  std::string uuid;
  uint64_t dev = 0;
  int32_t openCount = 0;
  uint32_t eventNr = 0;
  uint32_t targetCount = 0;
  uint32_t ioctls = 0;
  size_t bufferSize = 0;  // bytes of the buffer the answer came in
  Payload payload = Payload::None;
  // Specs and Names: kIndexWords words per row or device, pointing into the answer buffer.
  std::vector<uint32_t> index;
  uint32_t rows = 0;
  // Specs: the distinct target types, in order of first appearance.
  std::vector<std::string> types;
  // Specs and Names: whether every string the index points to is ASCII (JavaScript may then
  // decode them all at once, as Latin-1, and slice).
  bool ascii = true;
  std::vector<TargetVersion> versions;
  std::vector<uint64_t> deps;
  bool hasData = false;
  std::string data;
};

// Why a request cannot be sent as given (empty when it can). Shape only: sizes and NULs.
std::string checkRequest(const Request& req);

// Bytes the request needs: header plus payload.
size_t requestSize(const Request& req);

// Writes the request into buf (size >= requestSize(req)): clears all of buf, writes the
// request, and sets data_size to size (the rest is room for the answer).
void pack(const Request& req, uint8_t* buf, size_t size);
// pack() into the first `size` bytes of `buf` (which has room), clearing only what an earlier
// request or answer may have left there.
void packInto(const Request& req, Buffer& buf, size_t size);

// Reads the kernel's answer in buf[0, size). Returns an empty string on success, else what
// was wrong with the answer (an offset or string out of bounds).
std::string unpack(uint32_t cmd, const uint8_t* buf, size_t size, Result* out);

// The ioctl call, replaceable for fuzzing and benchmarks. Returns 0 or an errno value.
using IoctlFn = int (*)(int fd, unsigned long request, void* arg, void* context);
int systemIoctl(int fd, unsigned long request, void* arg, void* context);

struct Outcome {
  int err = 0;            // errno of the failed call, 0 on success
  const char* syscall = "ioctl";
  std::string detail;     // extra words for the error message
  Result result;
  // The buffer the answer came in, when the result's index points into it (rows or devices).
  Buffer answer;
};

// Buffer sizes per command and device (the identity in the request, and whether a table, a
// status or an IMA measurement is asked for): repeated large answers take one ioctl a call,
// and a small answer never pays for the largest one ever seen (the kernel allocates and
// copies in the whole buffer: at 8 MiB for a 4.8 MiB answer, a table's read costs it some
// three times what it costs at the answer's size). A hint is room for the last answer and a
// sixteenth (roomFor in dm_ioctl.cc); it moves when an answer outgrows it or its room is under four
// fifths of it. Bounded; safe from any thread.
class SizeHints {
 public:
  static constexpr size_t kMaxEntries = 256;

  // The size to start with for this request: its hint, else kInitialBufferSize.
  size_t lookup(const Request& req) const;
  // After an answer of `used` bytes (for which the buffer had to grow when `grew`).
  void learned(const Request& req, size_t used, bool grew);
  // The size to start with next time (an answer that did not fit and is not asked again).
  void remember(const Request& req, size_t size);
  // The largest hint for a command (kInitialBufferSize when it has none).
  size_t largest(uint32_t cmd) const;

 private:
  static std::string key(const Request& req);
  // Sets a hint, the oldest one making way when there are kMaxEntries (the mutex held).
  void set(const std::string& k, size_t size);
  mutable std::mutex mutex_;
  std::map<std::string, size_t> sizes_;
  std::deque<std::string> order_;
};

// The memory of large answers with rows, given back once their reader is done with them
// (Control's recycle), for the next such answer to be copied into: pages already mapped,
// where a fresh buffer costs a page fault a page (some 50 µs each under User-Mode Linux, 1,900
// of them for a 100,000-row table's 4.8 MB answer and its 3.2 MB index). Bounded by count
// and bytes; a buffer that held secrets is wiped when it comes back. Safe from any thread.
class AnswerPool {
 public:
  // Smaller memory is not kept: the allocator reuses it as cheaply.
  static constexpr size_t kMinBytes = 64 * 1024;
  static constexpr size_t kMaxKept = 4;  // buffers, and as many indexes
  static constexpr size_t kMaxBytes = 16 * 1024 * 1024;

  // Room for n bytes, its contents whatever they were (see Buffer::dirty): a kept buffer of
  // n to 2n bytes, else a new one.
  Buffer take(size_t n);
  // An empty index, with the room of the largest one kept (none kept: no room).
  std::vector<uint32_t> takeIndex();
  void give(Buffer&& buffer);
  void give(std::vector<uint32_t>&& index);
  // Frees what is kept, and keeps nothing from now on.
  void close();
  // Takes served by kept memory, and the bytes kept now.
  uint64_t reused() const;
  size_t keptBytes() const;

 private:
  size_t bytesLocked() const;
  mutable std::mutex mutex_;
  std::vector<Buffer> buffers_;
  std::vector<std::vector<uint32_t>> indexes_;
  uint64_t reused_ = 0;
  bool closed_ = false;
};

// Runs a request: packs it into a buffer of the hinted size (at least what it needs), grows
// and retries on DM_BUFFER_FULL when the command may be sent again (re-packing from the
// original request each time), records what worked, and unpacks the answer. `scratch` is the
// caller's buffer, reused from call to call (no allocation and no page faults); an answer
// with rows leaves with a copy of the bytes the kernel used, in Outcome::answer, and its
// index, both in memory from `pool` when it has some. A scratch that held secrets is wiped
// before run returns.
Outcome run(int fd, const Request& req, SizeHints& hints, Buffer& scratch,
            IoctlFn fn = systemIoctl, void* context = nullptr, AnswerPool* pool = nullptr);

// run(), but an answer with rows stays where it is: in scratch, with its index in `index`
// (Outcome::answer and Result::index stay empty). Both keep their room for the next call,
// and the answer (wiped if secret) is overwritten by it: the caller must be done with it by
// then. Other answers, and scratch, are as after run().
Outcome runInPlace(int fd, const Request& req, SizeHints& hints, Buffer& scratch,
                   std::vector<uint32_t>& index, IoctlFn fn = systemIoctl,
                   void* context = nullptr);

// The largest scratch buffer run() keeps for the next call (a table of some 300,000 rows); a
// larger one is freed, so that one huge table does not stay in memory. Kept pages cost
// nothing to reuse, where a fresh buffer is paid for page by page.
constexpr size_t kKeepScratch = 16 * 1024 * 1024;

// Overwrites memory so that the compiler cannot drop it.
void secureZero(void* p, size_t n);

// Kernel huge device encoding.
uint64_t encodeDev(uint32_t major, uint32_t minor);
uint32_t devMajor(uint64_t dev);
uint32_t devMinor(uint64_t dev);

}  // namespace dm
