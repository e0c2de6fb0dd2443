// Keeps the addon loadable on glibc 2.28 and later.
//
// libstdc++'s inline code (shared_ptr, std::thread...) compiled against glibc >= 2.32 headers
// reads `__libc_single_threaded` (GLIBC_2.32) to skip atomic operations in single-threaded
// programs. This project-local, hidden definition takes that reference inside the addon, so
// that no GLIBC_2.32 symbol is needed. Its value 0 ("maybe multi-threaded") keeps the atomic
// path, which is always correct (the addon runs threads of its own anyway).
extern "C" {
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;
}

// gcc 11's allocator calls std::__throw_bad_array_new_length (GLIBCXX_3.4.29) on an impossible
// size; older libstdc++ (gcc 6 to 10, Debian 10/11, Ubuntu 20.04) has no such symbol. This
// hidden definition, with the same meaning, keeps the reference inside the addon.
#include <new>

namespace std {
__attribute__((visibility("hidden"), noreturn)) void __throw_bad_array_new_length() {
  throw std::bad_array_new_length();
}
}  // namespace std
