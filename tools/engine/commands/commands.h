// The rows of `engine`'s command table (tools/engine/command.h), one function per command, each
// defined in this folder. Command-line glue only: the work is done by the library in engine/.
#pragma once

#include "tools/engine/command.h"

namespace emt::cli {

Command check_command();                 // inspect.cpp
Command plan_command();                  // inspect.cpp
Command run_command();                   // run.cpp
Command eval_command();                  // eval.cpp
Command predict_command();               // predict.cpp
Command export_onnx_command();           // export_onnx.cpp
Command import_onnx_command();           // import.cpp
Command import_onnx_backbone_command();  // import.cpp
Command import_tflite_command();         // import.cpp
Command experiment_command();            // experiment.cpp
Command bench_command();                 // bench.cpp

}  // namespace emt::cli
