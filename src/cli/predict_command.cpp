// `owt predict MODEL.yaml --checkpoint CKPT IMAGE...`: the top classes of each image file, with
// their names (the model file's data.class_names, else the checkpoint's) and probabilities.
// Images go through the model's evaluation transform.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <numeric>

#include "commands.h"
#include "owt/comm/communicator.h"
#include "owt/data/image_codec.h"
#include "owt/data/transform.h"
#include "owt/train/model.h"
#include "owt/train/checkpoint.h"

namespace owt {
namespace {

// The image file decoded to the model's channels: RGB, or grey (ITU-R BT.601 luma) for C = 1.
Image read_image_file(const std::string& path, int64_t channels) {
  Image rgb;
  try {
    const std::string bytes = read_encoded_image(path);
    decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), rgb);
  } catch (const BadExample& e) {
    throw Error(cat(path, ": ", e.what()));
  }
  if (channels == 3) return rgb;
  if (channels != 1) throw Error(cat(path, ": the model takes ", channels, "-channel images"));
  Image grey;
  grey.resize(1, rgb.h, rgb.w);
  const int64_t plane = rgb.h * rgb.w;
  for (int64_t i = 0; i < plane; ++i)
    grey.pixels[i] = 0.299f * rgb.pixels[i] + 0.587f * rgb.pixels[plane + i] +
                     0.114f * rgb.pixels[2 * plane + i];
  return grey;
}

}  // namespace

void add_predict_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::string model, checkpoint, device = "auto";
    std::vector<std::string> images;
    int top = 5, threads = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("predict", "Classify image files with a checkpoint");
  cmd->add_option("model", args->model, "Model file (YAML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("images", args->images, "Image files (JPEG, PNG, ...)")->required();
  cmd->add_option("--checkpoint", args->checkpoint, "Checkpoint (.safetensors)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--top", args->top, "How many classes to print per image")
      ->capture_default_str()->check(CLI::PositiveNumber);
  add_compute_options(cmd, args->threads, args->device);
  cmd->callback([args, &run] {
    run = [args](Communicator& world) {
      if (world.size() != 1) throw Error("owt predict runs on one worker; start it without mpirun");
      set_thread_count(args->threads);
      ModelConfig cfg = load_model_config(args->model);
      auto backend = make_backend_for(args->device, cfg.precision, false);
      auto comm = make_local_communicator();
      Model model(cfg, *backend, *comm, ParallelMode::Owt, ParamInit::FromCheckpoint);
      LoadedCheckpoint ck = load_checkpoint(args->checkpoint, model.store(), *backend, false);
      // The model file's data.class_names, else the names the checkpoint was trained with
      // (its data set's, or "0", "1", ... for sets without names such as IDX).
      const std::vector<std::string> names =
          cfg.data.class_names.empty() ? checkpoint_class_names(ck.metadata, cfg.net.classes)
                                       : cfg.data.class_names;

      // The evaluation transform; an image of another size is resized and centre-cropped.
      TransformSpec spec = cfg.data.eval;
      const int64_t c = cfg.net.input[0], h = cfg.net.input[1], w = cfg.net.input[2];
      if (spec.crop == 0 && h == w) {
        spec.crop = static_cast<int>(h);
        if (spec.resize == 0) spec.resize = static_cast<int>(h);
      }
      Transform tf(spec, Shape{c, 0, 0}, cfg.seed);
      Tensor x = backend->empty(cfg.net.input.with_batch(1));
      std::vector<float> pixels(cfg.net.input.numel()), scratch, probs(cfg.net.classes);
      for (const std::string& path : args->images) {
        Image img = read_image_file(path, c);
        try {
          tf.apply(img, pixels.data(), 0, 0, false, scratch);
        } catch (const BadExample& e) {
          throw Error(cat(path, ": ", e.what()));
        }
        backend->from_host(pixels.data(), x.f32(), pixels.size() * sizeof(float));
        Tensor logits = model.stepper().logits(x);
        backend->to_host(logits.f32(), probs.data(), probs.size() * sizeof(float));
        float mx = *std::max_element(probs.begin(), probs.end());
        double sum = 0;
        for (float& p : probs) sum += (p = std::exp(p - mx));
        std::vector<int> order(probs.size());
        std::iota(order.begin(), order.end(), 0);
        const int k = std::min<int>(args->top, static_cast<int>(order.size()));
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int a, int b) { return probs[a] > probs[b]; });
        std::printf("%s\n", path.c_str());
        for (int i = 0; i < k; ++i)
          std::printf("  %d. %-24s %6.2f%%\n", i + 1, names[order[i]].c_str(),
                      100.0 * probs[order[i]] / sum);
      }
      return 0;
    };
  });
}

}  // namespace owt
