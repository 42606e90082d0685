#include "engine/mobile/verify.h"

#include <algorithm>
#include <cmath>

#include "engine/data/phantom.h"
#include "engine/data/preprocess.h"
#include "engine/runtime/batch.h"
#include "engine/runtime/model.h"
#include "mobile/runtime.h"

namespace emt {

MobileCheck check_against_engine(const GraphFile& file, const SafetensorsFile& weights,
                                 const mobile::Artifact& artifact, int64_t images) {
  const Config& config = file.config;
  const int side = input_size(config);
  const int channels = static_cast<int>(file.graph.inputs.front().shape.front());
  const Normalization norm = normalization(config);
  PhantomConfig phantom;
  phantom.count = static_cast<int>(images);
  std::vector<Sample> samples;
  std::vector<float> pixels;
  for (int i = 0; i < phantom.count; ++i) {
    samples.push_back(preprocess(generate_phantom(phantom, i), side, channels, norm));
    pixels.insert(pixels.end(), samples.back().image.begin(), samples.back().image.end());
  }

  Model model(file, 0, Backend::kOnednn);
  model.params().load_tensors(weights, "weights");
  Executor& exec = model.executor(images, Mode::kEval);
  std::vector<const Sample*> batch;
  for (const Sample& s : samples) batch.push_back(&s);
  load_batch(exec, batch);
  exec.forward();

  mobile::Runtime runtime(artifact, images);
  runtime.run(pixels, images);
  MobileCheck check;
  check.images = images;
  int64_t agree = 0, pixels_compared = 0;
  for (const auto& [name, value] : exec.program().outputs) {
    const std::vector<float> want = exec.read(value);
    const std::span<const float> got = runtime.output(name);
    for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
      const double diff = std::abs(double(got[i]) - want[i]);
      if (name == kClassOutput) {
        check.max_cls_diff = std::max(check.max_cls_diff, diff);
      } else {
        check.max_seg_diff = std::max(check.max_seg_diff, diff);
        agree += (got[i] >= 0.5f) == (want[i] >= 0.5f);
        ++pixels_compared;
      }
    }
  }
  if (pixels_compared) check.mask_agreement = double(agree) / double(pixels_compared);
  return check;
}

}  // namespace emt
