// The frame of a oneDNN variant whose primitives depend on the input shape and layout only (the
// memory-bound ops: batch_norm, eltwise activations, add, pooling, dense): shapes come from the
// reference op, primitives are built once per input shape and layout, and oneDNN's errors become
// OpErrors naming the node.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <tuple>

#include "ops/core/onednn_context.h"
#include "ops/core/op.h"

namespace emt::onednn {

template <class Primitives>
class VariantOp : public Op {
 public:
  // The reference owns the shape rules and their error messages.
  Inferred infer(std::span<const Shape> inputs) const override { return reference_->infer(inputs); }

  // Empty when oneDNN can run these inputs, else why not: for OpVariant::supports.
  std::string probe(std::span<const Shape> inputs) const {
    const int count = static_cast<int>(inputs.size());
    if (count < schema_->min_inputs || count > schema_->max_inputs)
      return schema_->name + " takes " + std::to_string(schema_->min_inputs) + " to " +
             std::to_string(schema_->max_inputs) + " inputs, got " + std::to_string(count);
    try {
      infer(inputs);
      make(inputs[0], Layout::kPlain, DataType::kF32);
      return "";
    } catch (const OpError& e) {
      return e.what();
    } catch (const dnnl::error& e) {
      return "oneDNN cannot run " + schema_->name + " on " + shape_str(inputs[0]) + ": " + e.what();
    }
  }

 protected:
  VariantOp(const OpSchema& schema, const Attrs& attrs)
      : schema_(&schema), reference_(schema.create(attrs)) {}

  // The primitives of an input shape that infer() accepted, in the input's layout and dtype
  // (which the output and the gradients share, see LayoutPolicy, except where a variant says
  // otherwise: pooling's [N, C] output is plain f32). Should only build descriptors and
  // leave the primitives to their first use: probe() calls it, and oneDNN generates code when a
  // primitive is created.
  virtual std::unique_ptr<Primitives> make(const Shape& input, Layout layout,
                                           DataType dtype) const = 0;

  // Calls body(primitives) with the primitives of this input, created on its first use:
  // a node normally sees one shape, and each new one costs new primitives (and their JIT code),
  // never one per call.
  template <class Body>
  void run(const Tensor& input, const Body& body) {
    try {
      std::unique_ptr<Primitives>& primitives = cache_[{input.shape, input.layout, input.dtype}];
      if (!primitives) primitives = make(input.shape, input.layout, input.dtype);
      body(*primitives);
    } catch (const dnnl::error& e) {
      throw OpError(schema_->name + "[onednn] " + shape_str(input.shape) + " " +
                    layout_name(input.layout) + " " + dtype_name(input.dtype) + ": " + e.what());
    }
  }

 private:
  const OpSchema* schema_;
  std::unique_ptr<Op> reference_;
  std::map<std::tuple<Shape, Layout, DataType>, std::unique_ptr<Primitives>> cache_;
};

// OpVariant's two functions for a VariantOp subclass constructible from the node's attributes.
template <class VariantOpT>
std::string supports(const Attrs& attrs, std::span<const Shape> inputs) {
  try {
    return VariantOpT(attrs).probe(inputs);
  } catch (const OpError& e) {
    return e.what();
  }
}

template <class VariantOpT>
std::unique_ptr<Op> create(const Attrs& attrs) {
  return std::make_unique<VariantOpT>(attrs);
}

}  // namespace emt::onednn
