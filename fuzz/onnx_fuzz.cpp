// ONNX models as `engine import` reads them: the protobuf, the importer's walk over the nodes
// and tensors (engine/onnx/model_reader.cpp, importer*.cpp, import_*.cpp), then the generated
// graph text through the DSL. (import.cpp's last step, compiling that graph, is left out: it
// would bring the whole engine in.)
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "engine/dsl/parser.h"
#include "engine/onnx/importer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    emt::OnnxImportOptions opt;
    opt.source = "fuzz.onnx";
    const onnx::ModelProto model = emt::onnx_import::parse_model(bytes, opt.source);
    const emt::OnnxImport imported = emt::onnx_import::Importer(model, opt).run();
    emt::parse_graph_text(imported.toml, imported.toml_name);
  } catch (const std::exception&) {
  }
  return 0;
}
