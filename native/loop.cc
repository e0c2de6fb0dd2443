#include "loop.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/hdreg.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace loopdev {

namespace {

// An fd closed on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

int openRetry(const std::string& path, int flags) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

int ioctlRetry(int fd, unsigned long request, void* arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r;
}

int ioctlRetry(int fd, unsigned long request, unsigned long arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r;
}

Failure fail(const char* syscall, const std::string& path) {
  Failure f;
  f.err = errno;
  f.syscall = syscall;
  f.path = path;
  return f;
}

void fillInfo(const Config& config, const std::string& filePath, struct loop_info64* info,
              bool forConfigure) {
  std::memset(info, 0, sizeof *info);
  info->lo_offset = config.offset;
  info->lo_sizelimit = config.sizeLimit;
  if (config.autoclear) info->lo_flags |= LO_FLAGS_AUTOCLEAR;
  if (forConfigure) {
    if (config.readOnly) info->lo_flags |= LO_FLAGS_READ_ONLY;
    if (config.directIo) info->lo_flags |= LO_FLAGS_DIRECT_IO;
  }
  // lo_file_name is informational (shown by losetup); a long path is cut to fit.
  size_t n = filePath.size() < LO_NAME_SIZE - 1 ? filePath.size() : LO_NAME_SIZE - 1;
  std::memcpy(info->lo_file_name, filePath.data(), n);
}

}  // namespace

Failure getFree(const std::string& controlPath, int* number) {
  Fd ctl(openRetry(controlPath, O_RDWR));
  if (!ctl.ok()) return fail("open", controlPath);
  int r = ioctlRetry(ctl.get(), LOOP_CTL_GET_FREE, 0ul);
  if (r < 0) return fail("ioctl", controlPath);
  *number = r;
  return Failure();
}

Failure configure(const std::string& loopPath, const std::string& filePath, const Config& config) {
  Fd file(openRetry(filePath, config.readOnly ? O_RDONLY : O_RDWR));
  if (!file.ok()) return fail("open", filePath);
  Fd loop(openRetry(loopPath, config.readOnly ? O_RDONLY : O_RDWR));
  if (!loop.ok()) return fail("open", loopPath);

  struct loop_config lc;
  std::memset(&lc, 0, sizeof lc);
  lc.fd = static_cast<uint32_t>(file.get());
  lc.block_size = config.blockSize;
  fillInfo(config, filePath, &lc.info, true);
  if (ioctlRetry(loop.get(), LOOP_CONFIGURE, &lc) == 0) return Failure();
  if (errno != EINVAL && errno != ENOTTY) return fail("ioctl", loopPath);

  // Kernels before 5.8 have no LOOP_CONFIGURE: bind, then set the status.
  if (ioctlRetry(loop.get(), LOOP_SET_FD, static_cast<unsigned long>(file.get())) < 0)
    return fail("ioctl", loopPath);
  struct loop_info64 info;
  fillInfo(config, filePath, &info, false);
  if (ioctlRetry(loop.get(), LOOP_SET_STATUS64, &info) < 0 ||
      (config.blockSize && ioctlRetry(loop.get(), LOOP_SET_BLOCK_SIZE, config.blockSize) < 0) ||
      (config.directIo && ioctlRetry(loop.get(), LOOP_SET_DIRECT_IO, 1ul) < 0)) {
    Failure f = fail("ioctl", loopPath);
    ioctlRetry(loop.get(), LOOP_CLR_FD, 0ul);
    return f;
  }
  return Failure();
}

Failure clear(const std::string& loopPath) {
  Fd loop(openRetry(loopPath, O_RDONLY));
  if (!loop.ok()) return fail("open", loopPath);
  if (ioctlRetry(loop.get(), LOOP_CLR_FD, 0ul) < 0) return fail("ioctl", loopPath);
  return Failure();
}

Failure status(const std::string& loopPath, Info* out) {
  Fd loop(openRetry(loopPath, O_RDONLY));
  if (!loop.ok()) return fail("open", loopPath);
  struct loop_info64 info;
  std::memset(&info, 0, sizeof info);
  if (ioctlRetry(loop.get(), LOOP_GET_STATUS64, &info) < 0) return fail("ioctl", loopPath);
  out->device = info.lo_device;
  out->inode = info.lo_inode;
  out->rdevice = info.lo_rdevice;
  out->offset = info.lo_offset;
  out->sizeLimit = info.lo_sizelimit;
  out->number = info.lo_number;
  out->flags = info.lo_flags;
  const char* name = reinterpret_cast<const char*>(info.lo_file_name);
  out->fileName.assign(name, strnlen(name, LO_NAME_SIZE));
  return Failure();
}

Failure setCapacity(const std::string& loopPath) {
  Fd loop(openRetry(loopPath, O_RDONLY));
  if (!loop.ok()) return fail("open", loopPath);
  if (ioctlRetry(loop.get(), LOOP_SET_CAPACITY, 0ul) < 0) return fail("ioctl", loopPath);
  return Failure();
}

Failure blockDeviceSize(const std::string& path, uint64_t* bytes) {
  Fd dev(openRetry(path, O_RDONLY));
  if (!dev.ok()) return fail("open", path);
  uint64_t size = 0;
  if (ioctlRetry(dev.get(), BLKGETSIZE64, &size) < 0) return fail("ioctl", path);
  *bytes = size;
  return Failure();
}

Failure blockDiscard(const std::string& path, uint64_t offset, uint64_t length) {
  Fd dev(openRetry(path, O_RDWR));
  if (!dev.ok()) return fail("open", path);
  uint64_t range[2] = {offset, length};
  if (ioctlRetry(dev.get(), BLKDISCARD, range) < 0) return fail("ioctl", path);
  return Failure();
}

Failure blockGeometry(const std::string& path, Geometry* out) {
  Fd dev(openRetry(path, O_RDONLY));
  if (!dev.ok()) return fail("open", path);
  struct hd_geometry geo;
  std::memset(&geo, 0, sizeof geo);
  if (ioctlRetry(dev.get(), HDIO_GETGEO, &geo) < 0) return fail("ioctl", path);
  out->heads = geo.heads;
  out->sectors = geo.sectors;
  out->cylinders = geo.cylinders;
  out->start = geo.start;
  return Failure();
}

}  // namespace loopdev
