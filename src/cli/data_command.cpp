// `owt data check PATH` (examples per class, image sizes, unreadable files, for every format)
// and `owt data pack SRC DST` (an image folder to a packed set of shards plus an index), each
// with a progress bar on a terminal.
#include <cstdio>
#include <memory>
#include <thread>

#include "commands.h"
#include "owt/data/check.h"
#include "owt/data/pack.h"
#include "owt/train/metrics.h"

namespace owt {
namespace {

int default_threads(int threads) {
  return threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int run_check(const std::string& path, std::string format, int threads, bool strict, bool progress) {
  if (format.empty()) format = detect_format(path);
  if (format.empty())
    throw Error(cat(path, ": cannot tell the data set format (no IDX, CIFAR, packed index, "
                    "train/val folder or class folders of images there); give --format"));
  std::printf("%s: format %s\n", path.c_str(), format.c_str());
  int64_t problems = 0;
  for (const std::string& split : dataset_splits(format, path)) {
    auto data = open_dataset(format, path, split, DatasetOptions{strict});
    // A folder of class folders is one split, shown as "all".
    const std::string name = split == kWholeFolder ? "all" : split;
    CheckReport r;
    {
      ProgressBar bar(cat("checking ", name), static_cast<double>(data->size()), progress_is_live(progress));
      r = check_dataset(*data, name, default_threads(threads),
                        [&bar](int64_t done) { bar.update(static_cast<double>(done)); });
    }
    std::fputs(format_report(r).c_str(), stdout);
    problems += static_cast<int64_t>(r.unreadable.size()) + r.skipped_at_open;
  }
  if (problems > 0) {
    std::printf("owt data check: %lld problem file%s\n", static_cast<long long>(problems),
                problems == 1 ? "" : "s");
    return 1;
  }
  std::printf("owt data check: ok\n");
  return 0;
}

}  // namespace

void add_data_command(CLI::App& app, CommandRunner& run) {
  CLI::App* cmd = app.add_subcommand("data", "Check or pack data sets");
  cmd->require_subcommand(1);

  struct CheckArgs {
    std::string path, format;
    int threads = 0;
    bool strict = false, progress = true;
  };
  auto c = std::make_shared<CheckArgs>();
  CLI::App* check = cmd->add_subcommand(
      "check", "Decode every example: examples per class, image sizes, unreadable files "
               "(exit code 1 when any file is unreadable)");
  check->add_option("path", c->path, "Data set directory (or a .owtpack index)")->required();
  check->add_option("--format", c->format, "idx, cifar10, cifar100, folder or packed (default: guessed)")
      ->check(CLI::IsMember({"idx", "cifar10", "cifar100", "folder", "packed"}));
  check->add_option("--threads", c->threads, "Decode threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  check->add_flag("--strict", c->strict, "Non-image files in class folders are errors");
  check->add_flag("!--no-progress", c->progress, "No progress bar on a terminal");
  check->callback([c, &run] {
    run = [c](Communicator&) {
      return run_check(c->path, c->format, c->threads, c->strict, c->progress);
    };
  });

  struct PackArgs {
    std::string src, dst;
    PackOptions opt;
    int64_t shard_mb = 1024;
    bool progress = true;
  };
  auto p = std::make_shared<PackArgs>();
  CLI::App* pack = cmd->add_subcommand(
      "pack", "Pack an image folder SRC/{train,val}/<class>/* into shards plus an index in DST");
  pack->add_option("src", p->src, "Image folder root")->required()->check(CLI::ExistingDirectory);
  pack->add_option("dst", p->dst, "Output directory")->required();
  pack->add_option("--size", p->opt.shorter, "Shorter side in pixels (0: keep images as they are)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  pack->add_option("--quality", p->opt.quality, "JPEG quality of resized images")
      ->capture_default_str()->check(CLI::Range(1, 100));
  pack->add_option("--shard-mb", p->shard_mb, "Shard size in MiB")
      ->capture_default_str()->check(CLI::PositiveNumber);
  pack->add_option("--threads", p->opt.threads, "Decode/resize threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  pack->add_flag("--strict", p->opt.strict, "Unreadable images are errors instead of skipped");
  pack->add_flag("!--no-progress", p->progress, "No progress bar on a terminal");
  pack->callback([p, &run] {
    run = [p](Communicator&) {
      PackOptions opt = p->opt;
      opt.threads = default_threads(opt.threads);
      opt.shard_bytes = p->shard_mb << 20;
      std::unique_ptr<ProgressBar> bar;  // one per split, drawn from its first chunk
      std::string bar_split;
      if (progress_is_live(p->progress))
        opt.progress = [&](const std::string& split, int64_t done, int64_t total) {
          if (!bar || split != bar_split) {
            bar.reset();  // clears the previous split's line
            bar_split = split;
            bar = std::make_unique<ProgressBar>(cat("packing ", split), static_cast<double>(total), true);
          }
          bar->update(static_cast<double>(done));
        };
      PackSummary s = pack_image_folder(p->src, p->dst, opt);
      bar.reset();
      std::printf("owt data pack: %lld images (%lld skipped) of %zu split%s in %lld shard%s, "
                  "%.1f MiB, in %s\n",
                  static_cast<long long>(s.images), static_cast<long long>(s.skipped),
                  s.splits.size(), s.splits.size() == 1 ? "" : "s", static_cast<long long>(s.shards),
                  s.shards == 1 ? "" : "s", s.bytes / 1048576.0, p->dst.c_str());
      return 0;
    };
  });
}

}  // namespace owt
