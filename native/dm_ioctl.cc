#include "dm_ioctl.h"

#include <linux/dm-ioctl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace dm {

static_assert(sizeof(struct dm_ioctl) == kHeaderSize, "dm_ioctl layout");
static_assert(sizeof(struct dm_target_spec) == kSpecSize, "dm_target_spec layout");
static_assert(offsetof(struct dm_name_list, name) == 12, "dm_name_list layout");
static_assert(offsetof(struct dm_target_versions, name) == 16, "dm_target_versions layout");
static_assert(offsetof(struct dm_target_deps, dev) == 8, "dm_target_deps layout");

namespace {

// The ioctl request number of a command (see Cmd in dm_ioctl.h for the numbers).
constexpr unsigned long ioc(uint32_t nr) {
  return _IOWR(DM_IOCTL, nr, struct dm_ioctl);
}

// Flags, by the kernel's names (dm-ioctl.h), that a caller may send.
constexpr uint32_t READONLY = 1u << 0;
constexpr uint32_t SUSPEND = 1u << 1;
constexpr uint32_t PERSISTENT_DEV = 1u << 3;
constexpr uint32_t STATUS_TABLE = 1u << 4;
constexpr uint32_t SKIP_LOCKFS = 1u << 10;
constexpr uint32_t NOFLUSH = 1u << 11;
constexpr uint32_t QUERY_INACTIVE = 1u << 12;
constexpr uint32_t UUID = 1u << 14;
constexpr uint32_t SECURE_DATA = 1u << 15;  // the kernel wipes its copy, whatever the command
constexpr uint32_t DEFERRED_REMOVE = 1u << 17;
constexpr uint32_t IMA_MEASUREMENT = 1u << 19;

// The flags each command reads (dm-ioctl.c); the kernel-to-user ones (ACTIVE_PRESENT,
// INACTIVE_PRESENT, BUFFER_FULL, UEVENT_GENERATED, DATA_OUT, INTERNAL_SUSPEND) never go in.
const CommandInfo kCommands[kCommandCount] = {
    {"DM_VERSION", ioc(0), 0, SECURE_DATA, false, false},
    {"DM_REMOVE_ALL", ioc(1), 0, SECURE_DATA | DEFERRED_REMOVE, false, false},
    {"DM_LIST_DEVICES", ioc(2), 0, SECURE_DATA | UUID, false, true},
    {"DM_DEV_CREATE", ioc(3), 0, SECURE_DATA | PERSISTENT_DEV, false, false},
    {"DM_DEV_REMOVE", ioc(4), 0, SECURE_DATA | DEFERRED_REMOVE, true, false},
    {"DM_DEV_RENAME", ioc(5), 0, SECURE_DATA | UUID, true, false},
    {"DM_DEV_SUSPEND", ioc(6), 0, SECURE_DATA | SUSPEND | SKIP_LOCKFS | NOFLUSH, true, false},
    {"DM_DEV_STATUS", ioc(7), 0, SECURE_DATA | QUERY_INACTIVE, false, true},
    {"DM_DEV_WAIT", ioc(8), 0, SECURE_DATA | QUERY_INACTIVE | STATUS_TABLE | NOFLUSH | IMA_MEASUREMENT, true, true},
    {"DM_TABLE_LOAD", ioc(9), 0, SECURE_DATA | READONLY, false, false},
    {"DM_TABLE_CLEAR", ioc(10), 0, SECURE_DATA, false, false},
    {"DM_TABLE_DEPS", ioc(11), 0, SECURE_DATA | QUERY_INACTIVE, false, true},
    {"DM_TABLE_STATUS", ioc(12), 0, SECURE_DATA | QUERY_INACTIVE | STATUS_TABLE | NOFLUSH | IMA_MEASUREMENT, false, true},
    {"DM_LIST_VERSIONS", ioc(13), 1, SECURE_DATA, false, true},
    {"DM_TARGET_MSG", ioc(14), 2, SECURE_DATA, false, false},
    {"DM_DEV_SET_GEOMETRY", ioc(15), 6, SECURE_DATA, false, false},
    // libdevmapper asks for 4.36, but the command arrived after 4.36.0.
    {"DM_DEV_ARM_POLL", ioc(16), 37, SECURE_DATA, false, false},
    {"DM_GET_TARGET_VERSION", ioc(17), 41, SECURE_DATA, false, true},
};

struct FlagMinimum {
  uint32_t flag;
  uint32_t minor;
};

const FlagMinimum kFlagMinimums[] = {
    {1u << 11, 12},  // NOFLUSH
    {1u << 12, 16},  // QUERY_INACTIVE_TABLE
    {1u << 14, 19},  // UUID
    {1u << 15, 20},  // SECURE_DATA
    {1u << 17, 27},  // DEFERRED_REMOVE
    {1u << 19, 45},  // IMA_MEASUREMENT
};

constexpr size_t align8(size_t n) { return (n + 7) & ~static_cast<size_t>(7); }

uint32_t readU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t readU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void writeU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }
void writeU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, sizeof v); }

// A NUL-terminated string that starts at `at` and must end before `end`.
bool readString(const uint8_t* buf, size_t at, size_t end, std::string* out) {
  if (at >= end) return false;
  const void* nul = std::memchr(buf + at, 0, end - at);
  if (nul == nullptr) return false;
  out->assign(reinterpret_cast<const char*>(buf + at),
              static_cast<size_t>(static_cast<const uint8_t*>(nul) - (buf + at)));
  return true;
}

// A fixed-size header field: the string ends at the first NUL or at the field's end.
std::string fixedString(const char* field, size_t size) {
  const void* nul = std::memchr(field, 0, size);
  size_t len = nul ? static_cast<size_t>(static_cast<const char*>(nul) - field) : size;
  return std::string(field, len);
}

bool hasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// The length of the NUL-terminated string at `at`, which must end before `end`; false if not.
bool stringLength(const uint8_t* buf, size_t at, size_t end, size_t* len) {
  if (at >= end) return false;
  const void* nul = std::memchr(buf + at, 0, end - at);
  if (nul == nullptr) return false;
  *len = static_cast<size_t>(static_cast<const uint8_t*>(nul) - (buf + at));
  return true;
}

bool isAscii(const uint8_t* p, size_t n) {
  uint8_t any = 0;
  for (size_t i = 0; i < n; i++) any |= p[i];
  return (any & 0x80) == 0;
}

void pushU64(std::vector<uint32_t>& index, uint64_t v) {
  index.push_back(static_cast<uint32_t>(v));
  index.push_back(static_cast<uint32_t>(v >> 32));
}

// The id of `type` in out->types, added when new (tables use a handful of types).
uint32_t typeId(const char* type, size_t len, Result* out) {
  for (size_t i = out->types.size(); i-- > 0;) {
    const std::string& t = out->types[i];
    if (t.size() == len && std::memcmp(t.data(), type, len) == 0) return static_cast<uint32_t>(i);
  }
  out->types.emplace_back(type, len);
  return static_cast<uint32_t>(out->types.size() - 1);
}

std::string unpackSpecs(const uint8_t* buf, size_t start, size_t end, uint32_t count,
                        Result* out) {
  // On output, `next` is the offset of the following spec from the start of the data.
  // Every row takes at least kSpecSize + 1 bytes: a count beyond that is refused before any
  // room is reserved for it.
  if (count > (end - start) / (kSpecSize + 1)) return "target count larger than the data";
  out->index.reserve(static_cast<size_t>(count) * kIndexWords);
  size_t at = start;
  for (uint32_t i = 0; i < count; i++) {
    if (at > end || end - at < kSpecSize) return "target spec past the end of the data";
    uint32_t status = readU32(buf + at + 16);
    uint32_t next = readU32(buf + at + 20);
    const char* type = reinterpret_cast<const char*>(buf + at + 24);
    const void* nul = std::memchr(type, 0, DM_MAX_TYPE_NAME);
    size_t typeLen = nul ? static_cast<size_t>(static_cast<const char*>(nul) - type) : DM_MAX_TYPE_NAME;
    size_t paramsLen;
    if (!stringLength(buf, at + kSpecSize, end, &paramsLen))
      return "target parameters not terminated inside the data";
    if (out->ascii) out->ascii = isAscii(buf + at + kSpecSize, paramsLen);
    pushU64(out->index, readU64(buf + at));
    pushU64(out->index, readU64(buf + at + 8));
    out->index.push_back(status);
    out->index.push_back(typeId(type, typeLen, out));
    out->index.push_back(static_cast<uint32_t>(at + kSpecSize));
    out->index.push_back(static_cast<uint32_t>(paramsLen));
    out->rows++;
    if (i + 1 < count) {
      size_t nextAt = start + next;
      if (nextAt <= at || nextAt > end) return "target spec offset out of bounds";
      at = nextAt;
    }
  }
  return "";
}

std::string unpackNames(const uint8_t* buf, size_t start, size_t end, const uint32_t version[3],
                        Result* out) {
  if (start == end) return "";
  if (end - start < 12) return "name list shorter than one record";
  if (readU64(buf + start) == 0) return "";  // dev == 0 in the first record: no devices
  // event_nr follows the name since 4.37 (reliable since 4.38), flags and uuid since 4.45.
  bool haveEventNr = version[0] > 4 || (version[0] == 4 && version[1] >= 38);
  bool haveFlags = version[0] > 4 || (version[0] == 4 && version[1] >= 45);
  size_t at = start;
  for (;;) {
    if (at > end || end - at < 12) return "name record past the end of the data";
    uint64_t dev = readU64(buf + at);
    uint32_t next = readU32(buf + at + 8);
    size_t nameLen;
    if (!stringLength(buf, at + 12, end, &nameLen)) return "device name not terminated";
    if (out->ascii) out->ascii = isAscii(buf + at + 12, nameLen);
    size_t after = align8(at + 12 + nameLen + 1);
    uint32_t hasEventNr = 0, eventNr = 0, uuidAt = 0;
    size_t uuidLen = 0;
    if (haveEventNr && after + 8 <= end) {
      hasEventNr = 1;
      eventNr = readU32(buf + after);
      uint32_t flags = readU32(buf + after + 4);
      if (haveFlags && (flags & DM_NAME_LIST_FLAG_HAS_UUID)) {
        size_t u = align8(after + 8);
        if (!stringLength(buf, u, end, &uuidLen)) return "uuid not terminated";
        if (out->ascii) out->ascii = isAscii(buf + u, uuidLen);
        uuidAt = static_cast<uint32_t>(u);
      }
    }
    pushU64(out->index, dev);
    out->index.push_back(static_cast<uint32_t>(at + 12));
    out->index.push_back(static_cast<uint32_t>(nameLen));
    out->index.push_back(hasEventNr);
    out->index.push_back(eventNr);
    out->index.push_back(uuidAt);
    out->index.push_back(static_cast<uint32_t>(uuidLen));
    out->rows++;
    if (next == 0) return "";
    if (next > end - at) return "name record offset out of bounds";
    at += next;
  }
}

std::string unpackVersions(const uint8_t* buf, size_t start, size_t end, Result* out) {
  size_t at = start;
  if (start == end) return "";
  for (;;) {
    if (at > end || end - at < 16) return "version record past the end of the data";
    TargetVersion v;
    uint32_t next = readU32(buf + at);
    for (int i = 0; i < 3; i++) v.version[i] = readU32(buf + at + 4 + 4 * i);
    if (!readString(buf, at + 16, end, &v.name)) return "target name not terminated";
    out->versions.push_back(std::move(v));
    if (next == 0) return "";
    if (next > end - at) return "version record offset out of bounds";
    at += next;
  }
}

std::string unpackDeps(const uint8_t* buf, size_t start, size_t end, Result* out) {
  if (end - start < 8) return "deps record shorter than its header";
  uint32_t count = readU32(buf + start);
  if (count > (end - start - 8) / 8) return "deps count larger than the data";
  out->deps.reserve(count);
  for (uint32_t i = 0; i < count; i++) out->deps.push_back(readU64(buf + start + 8 + 8 * i));
  return "";
}

}  // namespace

const CommandInfo* commandInfo(uint32_t cmd) {
  return cmd < kCommandCount ? &kCommands[cmd] : nullptr;
}

uint32_t minimumMinor(uint32_t cmd, uint32_t flags) {
  const CommandInfo* info = commandInfo(cmd);
  uint32_t minor = info ? info->minMinor : 0;
  for (const FlagMinimum& f : kFlagMinimums)
    if ((flags & f.flag) && f.minor > minor) minor = f.minor;
  return minor;
}

Payload outputPayload(uint32_t cmd) {
  switch (cmd) {
    case kCmdListDevices: return Payload::Names;
    case kCmdDevWait:
    case kCmdTableStatus: return Payload::Specs;
    case kCmdTableDeps: return Payload::Deps;
    case kCmdListVersions:
    case kCmdGetTargetVersion: return Payload::Versions;
    case kCmdTargetMsg: return Payload::Message;
    default: return Payload::None;
  }
}

void Request::wipe() {
  for (TargetSpec& t : targets) secureZero(&t.params[0], t.params.size());
  secureZero(&message[0], message.size());
  secureZero(&data[0], data.size());
}

void Result::wipe() { secureZero(&data[0], data.size()); }

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    words_ = other.words_;
    capacity_ = other.capacity_;
    dirty_ = other.dirty_;
    secret_ = other.secret_;
    other.words_ = nullptr;
    other.capacity_ = 0;
    other.dirty_ = 0;
    other.secret_ = false;
  }
  return *this;
}

void Buffer::reserve(size_t n, bool zero) {
  if (n <= capacity_ && words_ != nullptr) return;
  release();
  size_t words = (n + 7) / 8;
  if (!zero) {
    words_ = new uint64_t[words];
    capacity_ = words * 8;
    dirty_ = capacity_;
    return;
  }
  // Zeroed when allocated, unless the caller clears it at once (packInto() does).
  words_ = new uint64_t[words]();
  capacity_ = words * 8;
  dirty_ = 0;
}

void Buffer::release() {
  if (words_ == nullptr) return;
  if (secret_) secureZero(words_, capacity_);
  delete[] words_;
  words_ = nullptr;
  capacity_ = 0;
  dirty_ = 0;
  secret_ = false;
}

void Buffer::wipe(size_t n) {
  if (words_ == nullptr) return;
  if (n >= capacity_) {
    n = capacity_;
    secret_ = false;
  }
  secureZero(words_, n);
  if (n >= dirty_) dirty_ = 0;
}

void Buffer::clearFrom(size_t n) {
  if (words_ == nullptr || n >= dirty_) return;
  std::memset(bytes() + n, 0, dirty_ - n);
  dirty_ = n;
}

Buffer AnswerPool::take(size_t n) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The smallest kept buffer with room, unless it is more than twice the need.
    size_t best = buffers_.size();
    for (size_t i = 0; i < buffers_.size(); i++) {
      size_t c = buffers_[i].capacity();
      if (c >= n && c / 2 <= n && (best == buffers_.size() || c < buffers_[best].capacity())) best = i;
    }
    if (best < buffers_.size()) {
      Buffer out = std::move(buffers_[best]);
      buffers_.erase(buffers_.begin() + static_cast<std::ptrdiff_t>(best));
      reused_++;
      return out;
    }
  }
  Buffer out;
  out.reserve(n, false);
  return out;
}

std::vector<uint32_t> AnswerPool::takeIndex() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (indexes_.empty()) return {};
  size_t best = 0;
  for (size_t i = 1; i < indexes_.size(); i++)
    if (indexes_[i].capacity() > indexes_[best].capacity()) best = i;
  std::vector<uint32_t> out = std::move(indexes_[best]);
  indexes_.erase(indexes_.begin() + static_cast<std::ptrdiff_t>(best));
  out.clear();
  reused_++;
  return out;
}

void AnswerPool::give(Buffer&& buffer) {
  Buffer b = std::move(buffer);
  if (b.capacity() < kMinBytes) return;
  auto fits = [&] { return !closed_ && buffers_.size() < kMaxKept && bytesLocked() + b.capacity() <= kMaxBytes; };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!fits()) return;  // freed (and wiped, if secret) by its destructor
  }
  // An index holds offsets and lengths only; the bytes may hold a key. Wiped unlocked: the
  // I/O threads take and give meanwhile.
  if (b.secret()) b.wipe(b.capacity());
  std::lock_guard<std::mutex> lock(mutex_);
  if (fits()) buffers_.push_back(std::move(b));
}

void AnswerPool::give(std::vector<uint32_t>&& index) {
  std::vector<uint32_t> v = std::move(index);
  size_t bytes = v.capacity() * sizeof(uint32_t);
  if (bytes < kMinBytes) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_ || indexes_.size() >= kMaxKept || bytesLocked() + bytes > kMaxBytes) return;
  indexes_.push_back(std::move(v));
}

void AnswerPool::close() {
  std::vector<Buffer> buffers;
  std::vector<std::vector<uint32_t>> indexes;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    buffers.swap(buffers_);
    indexes.swap(indexes_);
  }
}

uint64_t AnswerPool::reused() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reused_;
}

size_t AnswerPool::keptBytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytesLocked();
}

size_t AnswerPool::bytesLocked() const {
  size_t n = 0;
  for (const Buffer& b : buffers_) n += b.capacity();
  for (const std::vector<uint32_t>& v : indexes_) n += v.capacity() * sizeof(uint32_t);
  return n;
}

void Buffer::clear(size_t n) {
  if (words_ == nullptr) return;
  if (n > capacity_) n = capacity_;
  std::memset(words_, 0, n < dirty_ ? n : dirty_);
  if (n >= dirty_) dirty_ = 0;
}

std::string checkRequest(const Request& req) {
  const CommandInfo* info = commandInfo(req.cmd);
  if (info == nullptr) return "unknown DM command number";
  uint32_t stray = req.flags & ~info->flags;
  if (stray != 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", stray);
    return std::string("flags ") + hex + " are not flags " + info->name + " takes";
  }
  if (req.eventNr != 0 && !info->eventNr) return std::string(info->name) + " takes no event_nr";
  if (req.repeatable && req.cmd != kCmdTargetMsg) return "only a message can be marked repeatable";
  if (req.name.size() > kNameMax) return "name longer than 127 bytes";
  if (req.uuid.size() > kUuidMax) return "uuid longer than 128 bytes";
  if (hasNul(req.name)) return "name contains a NUL byte";
  if (hasNul(req.uuid)) return "uuid contains a NUL byte";
  if (req.targets.size() > UINT32_MAX) return "too many targets";
  for (const TargetSpec& t : req.targets) {
    if (t.type.size() > kTypeMax) return "target type longer than 15 bytes";
    if (hasNul(t.type)) return "target type contains a NUL byte";
    if (hasNul(t.params)) return "target parameters contain a NUL byte";
  }
  if (req.hasData && hasNul(req.data)) return "data contains a NUL byte";
  if (req.hasMessage && hasNul(req.message)) return "message contains a NUL byte";
  if (requestSize(req) > kMaxBufferSize) return "request larger than 256 MiB";
  return "";
}

size_t requestSize(const Request& req) {
  size_t n = kHeaderSize;
  if (req.cmd == kCmdTableLoad) {
    for (const TargetSpec& t : req.targets) n += align8(kSpecSize + t.params.size() + 1);
  } else if (req.cmd == kCmdTargetMsg) {
    n += align8(8 + req.message.size() + 1);
  } else if (req.hasData) {
    n += align8(req.data.size() + 1);
  }
  return n;
}

namespace {

// pack() into a buffer whose first `size` bytes are zero.
void packCleared(const Request& req, uint8_t* buf, size_t size);

}  // namespace

void pack(const Request& req, uint8_t* buf, size_t size) {
  // All of it: the kernel copies in the whole buffer, and a target whose status prints
  // nothing (unstriped, for one) leaves its row's text as it came in, which would be the
  // previous answer's words in a reused buffer.
  std::memset(buf, 0, size);
  packCleared(req, buf, size);
}

void packInto(const Request& req, Buffer& buf, size_t size) {
  // The same clearing as pack()'s, of the bytes that are not zero already.
  buf.clear(size);
  packCleared(req, buf.bytes(), size);
  buf.touched(requestSize(req));
}

namespace {

void packCleared(const Request& req, uint8_t* buf, size_t size) {
  auto* h = reinterpret_cast<struct dm_ioctl*>(buf);
  h->version[0] = DM_VERSION_MAJOR;
  h->version[1] = minimumMinor(req.cmd, req.flags);
  h->version[2] = 0;
  h->data_size = static_cast<uint32_t>(size);
  h->data_start = static_cast<uint32_t>(kHeaderSize);
  const CommandInfo* info = commandInfo(req.cmd);
  // Only what the command reads goes to the kernel (checkRequest refuses the rest up front).
  h->flags = info ? req.flags & info->flags : 0;
  h->event_nr = info && info->eventNr ? req.eventNr : 0;
  h->dev = req.dev;
  std::memcpy(h->name, req.name.data(), req.name.size());
  std::memcpy(h->uuid, req.uuid.data(), req.uuid.size());

  size_t at = kHeaderSize;
  if (req.cmd == kCmdTableLoad) {
    h->target_count = static_cast<uint32_t>(req.targets.size());
    // On input, `next` is the offset from this spec to the following one.
    for (const TargetSpec& t : req.targets) {
      size_t specSize = align8(kSpecSize + t.params.size() + 1);
      uint8_t* s = buf + at;
      writeU64(s, t.start);
      writeU64(s + 8, t.length);
      writeU32(s + 20, static_cast<uint32_t>(specSize));
      std::memcpy(s + 24, t.type.data(), t.type.size());
      std::memcpy(s + kSpecSize, t.params.data(), t.params.size());
      at += specSize;
    }
  } else if (req.cmd == kCmdTargetMsg) {
    writeU64(buf + at, req.sector);
    std::memcpy(buf + at + 8, req.message.data(), req.message.size());
  } else if (req.hasData) {
    std::memcpy(buf + at, req.data.data(), req.data.size());
  }
}

}  // namespace

std::string unpack(uint32_t cmd, const uint8_t* buf, size_t size, Result* out) {
  if (size < kHeaderSize) return "answer shorter than the dm_ioctl header";
  const auto* h = reinterpret_cast<const struct dm_ioctl*>(buf);
  for (int i = 0; i < 3; i++) out->version[i] = h->version[i];
  out->flags = h->flags;
  out->name = fixedString(h->name, sizeof h->name);
  out->uuid = fixedString(h->uuid, sizeof h->uuid);
  out->dev = h->dev;
  out->openCount = h->open_count;
  out->eventNr = h->event_nr;
  out->targetCount = h->target_count;
  out->payload = outputPayload(cmd);
  if (out->payload == Payload::None) return "";

  size_t start = h->data_start;
  size_t end = h->data_size;
  if (end > size) return "data_size larger than the buffer";
  // A command that wrote no data leaves data_size at the header's end (below data_start):
  // a device with no (inactive) table, a message with no output.
  // (A table that went away between the kernel's two looks also ends here: no rows.)
  if (end <= start) return "";
  if (start < kHeaderSize) return "data_start inside the header";

  switch (out->payload) {
    case Payload::Specs: return unpackSpecs(buf, start, end, h->target_count, out);
    case Payload::Names: return unpackNames(buf, start, end, out->version, out);
    case Payload::Versions: return unpackVersions(buf, start, end, out);
    case Payload::Deps: return unpackDeps(buf, start, end, out);
    case Payload::Message:
      if (!(h->flags & DM_DATA_OUT_FLAG)) return "";
      if (!readString(buf, start, end, &out->data)) return "message output not terminated";
      out->hasData = true;
      return "";
    case Payload::None: break;
  }
  return "";
}

int systemIoctl(int fd, unsigned long request, void* arg, void*) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? errno : 0;
}

namespace {

// The buffer for an answer of `used` bytes: those and a sixteenth more, in whole pages.
size_t roomFor(size_t used) {
  size_t room = used + used / 16;
  room = (room + 4095) & ~static_cast<size_t>(4095);
  return room > kMaxBufferSize ? kMaxBufferSize : room;
}

// The rows (dm_target_spec and its text) that lie whole in [start, end) of a TABLE_STATUS or
// DEV_WAIT answer, counted by their `next` offsets (start at the first).
size_t rowsWithin(const uint8_t* buf, size_t start, size_t end) {
  size_t rows = 0;
  for (size_t at = start; at < end && end - at >= kSpecSize;) {
    rows++;
    size_t nextAt = start + readU32(buf + at + 20);
    if (nextAt <= at) break;
    at = nextAt;
  }
  return rows;
}

// The size to try after DM_BUFFER_FULL at `size`: twice as much; for rows, room for every row
// of the table (the kernel counts them in target_count even when they did not fit) at the
// size of those that fitted, when that is more.
size_t grownSize(uint32_t cmd, const uint8_t* buf, size_t size) {
  size_t doubled = size > kMaxBufferSize / 2 ? kMaxBufferSize : size * 2;
  if (outputPayload(cmd) != Payload::Specs) return doubled;
  uint32_t start, end, count;
  std::memcpy(&start, buf + offsetof(struct dm_ioctl, data_start), sizeof start);
  std::memcpy(&end, buf + offsetof(struct dm_ioctl, data_size), sizeof end);
  std::memcpy(&count, buf + offsetof(struct dm_ioctl, target_count), sizeof count);
  if (start < kHeaderSize || end <= start || end > size) return doubled;
  size_t fitted = rowsWithin(buf, start, end);
  if (fitted == 0 || fitted >= count) return doubled;
  // Room for every row at the size the rows that fitted take on average (at most 2^28 bytes
  // of them times 2^32 rows: no overflow in 64 bits), and a sixteenth more for later rows
  // that run longer (a linear row's offset gains digits).
  uint64_t all = start + static_cast<uint64_t>(end - start) * count / fitted;
  all += all / 16;
  size_t room = all >= kMaxBufferSize ? kMaxBufferSize : roomFor(static_cast<size_t>(all));
  return room > doubled ? room : doubled;
}

}  // namespace

std::string SizeHints::key(const Request& req) {
  std::string k = std::to_string(req.cmd);
  k += '\0';
  k += req.name;
  k += '\0';
  k += req.uuid;
  k += '\0';
  k += std::to_string(req.dev);
  // A device's table, its status and its IMA measurement (live or inactive) are answers of
  // their own sizes.
  k += '\0';
  k += std::to_string(req.flags & (STATUS_TABLE | QUERY_INACTIVE | IMA_MEASUREMENT | UUID));
  return k;
}

size_t SizeHints::lookup(const Request& req) const {
  std::lock_guard<std::mutex> lock(mutex_);
  // Most answers fit the default size: no hint at all is the common case, and needs no key.
  if (sizes_.empty()) return kInitialBufferSize;
  auto it = sizes_.find(key(req));
  return it == sizes_.end() ? kInitialBufferSize : it->second;
}

void SizeHints::remember(const Request& req, size_t size) {
  std::lock_guard<std::mutex> lock(mutex_);
  set(key(req), size);
}

void SizeHints::set(const std::string& k, size_t size) {
  auto it = sizes_.find(k);
  if (it != sizes_.end()) {
    it->second = size;
    return;
  }
  if (sizes_.size() >= kMaxEntries) {
    sizes_.erase(order_.front());
    order_.pop_front();
  }
  sizes_.emplace(k, size);
  order_.push_back(k);
}

void SizeHints::learned(const Request& req, size_t used, bool grew) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Only a hint that exists can change.
  if (!grew && sizes_.empty()) return;
  std::string k = key(req);
  auto it = sizes_.find(k);
  if (!grew && it == sizes_.end()) return;
  size_t want = roomFor(used);
  if (want <= kInitialBufferSize) {
    if (it == sizes_.end()) return;
    sizes_.erase(it);
    for (auto o = order_.begin(); o != order_.end(); ++o) {
      if (*o == k) {
        order_.erase(o);
        break;
      }
    }
    return;
  }
  // Room for this answer and a little more: the kernel allocates and copies in the whole
  // buffer, so a hint twice the answer makes each call cost twice the copy. A hint within a
  // quarter over the room stays, so that answers that vary a little do not move it.
  if (it == sizes_.end())
    set(k, want);
  else if (it->second < want || it->second > want + want / 4)
    it->second = want;
}

size_t SizeHints::largest(uint32_t cmd) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string prefix = std::to_string(cmd);
  prefix += '\0';
  size_t best = kInitialBufferSize;
  for (const auto& [k, v] : sizes_)
    if (k.compare(0, prefix.size(), prefix) == 0 && v > best) best = v;
  return best;
}

namespace {

// run() and runInPlace(): `inPlace` is the caller's index when the answer stays in scratch.
Outcome runWith(int fd, const Request& req, SizeHints& hints, Buffer& scratch,
                std::vector<uint32_t>* inPlace, IoctlFn fn, void* context, AnswerPool* pool) {
  Outcome outcome;
  const CommandInfo* info = commandInfo(req.cmd);
  if (info == nullptr) {
    outcome.err = EINVAL;
    outcome.detail = "unknown DM command number";
    return outcome;
  }
  bool secure = (req.flags & DM_SECURE_DATA_FLAG) != 0;
  outcome.result.secure = secure;
  size_t needed = requestSize(req);
  // Commands without output need no more than their request.
  size_t size = outputPayload(req.cmd) == Payload::None ? needed : hints.lookup(req);
  if (size < needed) size = align8(needed);
  // However run ends, a scratch that held a secret is wiped, and a huge one freed; unless
  // the answer stays in it, for the caller (runInPlace).
  struct Tidy {
    Buffer& b;
    bool lent = false;
    ~Tidy() {
      if (lent) return;
      if (b.capacity() > kKeepScratch)
        b.release();
      else if (b.secret())
        b.wipe(b.capacity());
    }
  } tidy{scratch};
  // What an earlier in-place answer left (the caller is done with it): freed if huge, wiped
  // if secret.
  if (inPlace != nullptr && scratch.capacity() > kKeepScratch) scratch.release();
  if (inPlace != nullptr && scratch.secret()) scratch.wipe(scratch.capacity());
  for (;;) {
    // packInto() clears what it packs into: no need to zero the buffer when allocated, too.
    scratch.reserve(size, false);
    if (secure) scratch.markSecret();
    uint8_t* buf = scratch.bytes();
    // Packed anew on every try: the kernel has written its answer over the previous one.
    packInto(req, scratch, size);
    outcome.result.ioctls++;
    outcome.result.bufferSize = size;
    int err = fn(fd, info->request, buf, context);
    if (err != 0) {
      // Whatever the kernel (or a test's ioctl) left there is cleared next time.
      scratch.touched(size);
      outcome.err = err;
      return outcome;
    }
    uint32_t flags;
    std::memcpy(&flags, buf + offsetof(struct dm_ioctl, flags), sizeof flags);
    uint32_t answered;
    std::memcpy(&answered, buf + offsetof(struct dm_ioctl, data_size), sizeof answered);
    // The kernel copies back the data_size it answers with; a full buffer may hold more.
    scratch.touched((flags & DM_BUFFER_FULL_FLAG) || answered > size ? size : answered);
    if (flags & DM_BUFFER_FULL_FLAG) {
      bool retry = info->retryWhenFull || (req.cmd == kCmdTargetMsg && req.repeatable);
      size_t grown = grownSize(req.cmd, buf, size);
      if (!retry) {
        // The command has side effects (a message did what it does): it is never sent twice.
        // The hint grows, so that the caller may ask again with room for the answer.
        hints.remember(req, grown);
        outcome.err = req.cmd == kCmdTargetMsg ? ENOBUFS : EPROTO;
        outcome.detail = req.cmd == kCmdTargetMsg
                             ? "the target's answer did not fit in " + std::to_string(size) +
                                   " bytes; the message was delivered once and is not sent again"
                             : "the kernel answered DM_BUFFER_FULL to a command without output";
        return outcome;
      }
      if (size >= kMaxBufferSize) {
        outcome.err = ENOBUFS;
        outcome.detail = "the kernel's answer does not fit in 256 MiB";
        return outcome;
      }
      size = grown;
      continue;
    }
    uint32_t used = answered;
    if (outputPayload(req.cmd) != Payload::None) hints.learned(req, used, outcome.result.ioctls > 1);
    if (inPlace != nullptr) {
      // The caller's index, its room kept from call to call.
      inPlace->clear();
      outcome.result.index.swap(*inPlace);
    } else if (pool != nullptr) {
      Payload rows = outputPayload(req.cmd);
      if (rows == Payload::Specs || rows == Payload::Names) outcome.result.index = pool->takeIndex();
    }
    std::string why = unpack(req.cmd, buf, size, &outcome.result);
    if (inPlace != nullptr) outcome.result.index.swap(*inPlace);
    if (!why.empty()) {
      outcome.err = EPROTO;
      outcome.detail = "malformed answer from the kernel: " + why;
      outcome.result.index.clear();
      if (inPlace != nullptr) inPlace->clear();
      outcome.result.rows = 0;
      return outcome;
    }
    if (inPlace != nullptr) {
      tidy.lent = outcome.result.rows > 0;
      return outcome;
    }
    if (outcome.result.rows > 0) {
      // The index points into this buffer: the bytes the kernel used leave with the answer
      // (copied: the scratch stays for the next call), or the whole buffer when it is too
      // large to keep anyway.
      if (scratch.capacity() > kKeepScratch) {
        outcome.answer = std::move(scratch);
      } else {
        size_t keep = used < size ? used : size;
        if (pool != nullptr)
          outcome.answer = pool->take(keep);
        else
          outcome.answer.reserve(keep, false);
        if (secure) outcome.answer.markSecret();
        std::memcpy(outcome.answer.bytes(), buf, keep);
        outcome.answer.touched(keep);
        outcome.answer.clearFrom(keep);
      }
    } else if (pool != nullptr && outcome.result.index.capacity() > 0) {
      // Rows asked for and none came: the index's room goes back for the next answer.
      pool->give(std::move(outcome.result.index));
      outcome.result.index = {};
    }
    return outcome;
  }
}

}  // namespace

Outcome run(int fd, const Request& req, SizeHints& hints, Buffer& scratch, IoctlFn fn,
            void* context, AnswerPool* pool) {
  return runWith(fd, req, hints, scratch, nullptr, fn, context, pool);
}

Outcome runInPlace(int fd, const Request& req, SizeHints& hints, Buffer& scratch,
                   std::vector<uint32_t>& index, IoctlFn fn, void* context) {
  return runWith(fd, req, hints, scratch, &index, fn, context, nullptr);
}

void secureZero(void* p, size_t n) {
  if (n == 0 || p == nullptr) return;
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  while (n--) *v++ = 0;
}

uint64_t encodeDev(uint32_t major, uint32_t minor) {
  return (minor & 0xffu) | (static_cast<uint64_t>(major & 0xfffu) << 8) |
         (static_cast<uint64_t>(minor & ~0xffu) << 12);
}

uint32_t devMajor(uint64_t dev) { return static_cast<uint32_t>((dev >> 8) & 0xfff); }

uint32_t devMinor(uint64_t dev) {
  return static_cast<uint32_t>((dev & 0xff) | ((dev >> 12) & 0xfff00));
}

}  // namespace dm
