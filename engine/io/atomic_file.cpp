#include "engine/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "engine/io/file_descriptor.h"

namespace emt {
namespace {

[[noreturn]] void throw_os_error(const std::filesystem::path& path, const char* what, int err) {
  throw std::runtime_error(path.string() + ": " + what + ": " + std::strerror(err));
}

// Returns 0, or the errno of the first step that failed.
int write_sync_close(FileDescriptor& fd, std::string_view bytes) {
  if (const int err = write_all(fd.get(), bytes)) return err;
  if (::fsync(fd.get()) != 0) return errno;
  return fd.release_and_close() == 0 ? 0 : errno;
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  std::filesystem::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  FileDescriptor fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw_os_error(path, "cannot create temporary file", errno);
  int err = write_sync_close(fd, bytes);
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw_os_error(path, "cannot write", err);
  }
  sync_directory(path.parent_path());
}

std::string read_file(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) throw_os_error(path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_os_error(path, "cannot read", errno);
  if (S_ISDIR(st.st_mode)) throw_os_error(path, "cannot read", EISDIR);
  if (!S_ISREG(st.st_mode))
    throw std::runtime_error(path.string() + ": not a regular file (a FIFO, socket or device)");
  std::string bytes;
  // The size a regular file has now: read into one allocation, not a doubling series of them.
  bytes.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n == 0) return bytes;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_os_error(path, "cannot read", errno);
    }
    bytes.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace emt
