// The files a run directory holds, shared by the commands that write and read run directories.
#pragma once

namespace emt {

inline constexpr const char* kConfigFile = "config.toml";
inline constexpr const char* kLogFile = "log.txt";
inline constexpr const char* kMetricsFile = "metrics.json";
inline constexpr const char* kPerImageFile = "per_image.csv";
inline constexpr const char* kHistoryFile = "history.csv";
inline constexpr const char* kWeightsFile = "weights.safetensors";
inline constexpr const char* kCheckpointFile = "checkpoint.safetensors";

}  // namespace emt
