// The one place that knows how NEON intrinsics reach the compiler: natively on ARM, through
// SIMDe everywhere else, so that x86 test runs check the very kernel source a phone runs. Kernels
// include this and write the native names (vld1q_f32, vfmaq_f32, ...).
#pragma once

#if defined(__ARM_NEON)
#include <arm_neon.h>
#else
// SIMDe is not written for -Wpedantic; as a system header its warnings stay out of our build.
// Nothing follows the include, so this covers SIMDe alone.
#pragma GCC system_header
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#endif
