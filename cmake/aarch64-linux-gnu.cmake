# Cross build of ops/ and mobile/ for 64-bit ARM phones (Debian's g++-aarch64-linux-gnu); the
# tests run under qemu-aarch64 (qemu-user) with the target's libraries from /usr/aarch64-linux-gnu.
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# ARMv8.2-A: the baseline of every phone SoC since 2017 (Cortex-A55/A75), with fp16 arithmetic.
set(CMAKE_CXX_FLAGS_INIT "-march=armv8.2-a+fp16")
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
# The aarch64 build is the mobile one: no oneDNN, OpenCV or TBB exist for it here.
set(EMT_MOBILE_ONLY ON CACHE BOOL "" FORCE)
