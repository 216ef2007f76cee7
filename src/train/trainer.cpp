// The training loop of one worker: checks data against the model, builds network, params and
// step, then runs epochs of steps with evaluation, metrics, progress and checkpoints.
#include "owt/train/trainer.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>

#include "owt/data/loader.h"
#include "owt/nn/init.h"
#include "owt/nn/param_store.h"
#include "owt/parallel/hybrid_step.h"
#include "owt/train/checkpoint.h"
#include "owt/train/data_split.h"
#include "owt/train/evaluate.h"
#include "owt/train/metrics.h"
#include "owt/train/optimizer.h"
#include "owt/train/train_step.h"

namespace owt {
namespace {

// Applies --resume (weights, optimizer state, step) or --init-from (matching weights only) to
// freshly initialised params; returns the step to continue from.
int64_t restore_state(const TrainOptions& opt, const ParamStore& store, Backend& backend, bool lead) {
  if (!opt.resume.empty() && !opt.init_from.empty())
    throw Error("--resume and --init-from exclude each other: resume continues a run, "
                "init-from starts a new one from someone's weights");
  if (!opt.resume.empty()) {
    std::string path = resolve_resume_path(opt.resume);
    LoadedCheckpoint ck = load_checkpoint(path, store, backend, true);
    if (lead) std::fprintf(stderr, "owt: resuming from %s at step %lld\n", path.c_str(),
                           static_cast<long long>(ck.step));
    return ck.step;
  }
  if (!opt.init_from.empty()) {
    InitFromReport r = init_from_checkpoint(opt.init_from, store, opt.renames, backend);
    if (lead) {
      auto list = [](const char* what, const std::vector<std::string>& names) {
        std::fprintf(stderr, "owt: init-from: %zu %s", names.size(), what);
        for (size_t i = 0; i < names.size(); ++i) std::fprintf(stderr, "%s%s", i ? ", " : ": ", names[i].c_str());
        std::fprintf(stderr, "\n");
      };
      std::fprintf(stderr, "owt: init-from %s\n", opt.init_from.c_str());
      list("loaded", r.loaded);
      list("shape-mismatched (freshly initialised)", r.shape_mismatch);
      list("missing from the checkpoint (freshly initialised)", r.missing);
      list("in the checkpoint but unused", r.unused);
    }
    if (r.loaded.empty())
      throw Error(cat(opt.init_from, ": no tensor matches a parameter of the model (use --rename OLD=NEW)"));
  }
  return 0;
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string default_run_dir(const std::string& name) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + name + "-" + stamp;
}

// The model file with the command-line overrides written in, as the run actually used it.
std::string resolved_config_text(const ModelConfig& cfg) {
  YAML::Node doc = YAML::Load(cfg.text);
  doc["seed"] = cfg.seed;
  doc["data"]["path"] = cfg.data.path;
  doc["solver"]["batch"] = cfg.solver.batch;
  doc["solver"]["epochs"] = cfg.solver.epochs;
  doc["solver"]["lr"] = cfg.solver.lr;
  YAML::Emitter out;
  out << doc;
  return std::string(out.c_str()) + "\n";
}

}  // namespace

void apply_overrides(ModelConfig& cfg, const TrainOptions& opt) {
  if (!opt.data_dir.empty()) cfg.data.path = opt.data_dir;
  if (opt.epochs > 0) cfg.solver.epochs = opt.epochs;
  if (opt.batch > 0) cfg.solver.batch = opt.batch;
  if (opt.lr > 0) cfg.solver.lr = opt.lr;
  if (opt.seed >= 0) cfg.seed = static_cast<uint64_t>(opt.seed);
  if (opt.strict) cfg.data.strict = true;
}

TrainSummary train(const ModelConfig& cfg_in, const TrainOptions& opt, Backend& backend,
                   Communicator& comm) {
  ModelConfig cfg = cfg_in;
  apply_overrides(cfg, opt);
  const int rank = comm.rank(), K = comm.size();
  const bool lead = rank == 0;
  auto train_set = open_split(cfg, "train");
  auto test_set = open_split(cfg, "test");
  Transform train_tf(cfg.data.train, train_set->example_shape(), cfg.seed);
  Transform eval_tf(cfg.data.eval, test_set->example_shape(), cfg.seed);
  check_split(*train_set, cfg, train_tf, "train");
  check_split(*test_set, cfg, eval_tf, "test");

  const int64_t b = cfg.solver.batch, B = b * K;
  LoaderSpec train_spec{b, rank, K, true, true, true, cfg.seed, std::max(1, cfg.data.threads)};
  train_spec.prefetch = cfg.data.prefetch;
  train_spec.strict = cfg.data.strict;
  LoaderSpec eval_spec = train_spec;
  eval_spec.shuffle = eval_spec.train = eval_spec.drop_last = false;
  BatchLoader train_loader(*train_set, train_tf, train_spec);
  BatchLoader eval_loader(*test_set, eval_tf, eval_spec);
  const int64_t steps_per_epoch = train_loader.batches_per_epoch();
  if (steps_per_epoch == 0)
    throw Error(cat(cfg.data.path, ": the train set has ", train_set->size(),
                    " examples, fewer than one global batch of ", B, " (", K, " x ", b, ")"));

  const std::vector<std::string> class_names = train_set->class_names();
  Network net(cfg, rank, K, opt.mode);
  ParamStore store(net.params(), backend);
  for (Param* p : store.params()) initialize_param(*p, cfg.seed, backend);
  const int64_t start_step = restore_state(opt, store, backend, lead);
  HybridStep stepper(net, store, backend, comm, cfg.parallel);
  SgdOptimizer sgd(cfg.solver);

  int64_t total_steps = cfg.solver.epochs * steps_per_epoch;
  if (opt.max_steps > 0) total_steps = std::min(total_steps, opt.max_steps);
  LrSchedule schedule(cfg.solver, steps_per_epoch, cfg.solver.epochs * steps_per_epoch);

  TrainStep train_step(stepper, store, sgd, backend, cfg, net);

  // Everything is checked; only now does rank 0 create the run directory.
  TrainSummary summary;
  summary.run_dir = !opt.out_dir.empty() ? opt.out_dir
                    : !opt.resume.empty() && std::filesystem::is_directory(opt.resume) ? opt.resume
                    : default_run_dir(cfg.name);
  std::optional<MetricsLog> metrics;
  if (lead) {
    std::filesystem::create_directories(summary.run_dir + "/checkpoints");
    std::ofstream(summary.run_dir + "/config.yaml") << resolved_config_text(cfg);
    metrics.emplace(summary.run_dir + "/metrics.jsonl");
  }
  ProgressLine progress(lead, opt.progress);

  const Shape in = cfg.input;
  std::vector<float> x_host(b * in.numel());
  std::vector<int32_t> local_labels(b), labels_host;
  Tensor x_dev = backend.empty(in.with_batch(b));
  Tensor labels_dev = backend.empty(Shape{B}, DType::I32);

  auto run_eval = [&](int64_t epoch) {
    EvalCounts total = evaluate_dataset(stepper, *test_set, eval_loader, in, b, backend, comm);
    MetricsRecord r;
    r.kind = "eval";
    r.epoch = epoch;
    r.step = summary.steps;
    r.loss = total.loss_sum / total.rows;
    r.top1 = static_cast<double>(total.top1) / total.rows;
    r.top5 = static_cast<double>(total.top5) / total.rows;
    return r;
  };

  const auto run_start = Clock::now();
  double train_seconds = 0;
  int64_t step = start_step;
  summary.steps = step;
  for (int64_t epoch = step / steps_per_epoch + 1; epoch <= cfg.solver.epochs && step < total_steps;
       ++epoch) {
    const int64_t first = step - (epoch - 1) * steps_per_epoch;
    const int64_t end = std::min(steps_per_epoch, total_steps - (epoch - 1) * steps_per_epoch);
    progress.start_epoch(epoch, cfg.solver.epochs, end - first);
    EvalCounts seen;
    double epoch_seconds = 0;
    const double wait0 = train_loader.wait_seconds();
    comm.reset_counters();
    double lr = 0;
    for (int64_t i = first; i < end; ++i, ++step) {
      auto t0 = Clock::now();
      BatchRows split = split_rows(B, rank, K);
      train_loader.load(epoch, i, x_host.data(), local_labels.data());
      global_labels(train_loader, *train_set, epoch, i, B, B, labels_host);
      backend.from_host(x_host.data(), x_dev.f32(), x_host.size() * sizeof(float));
      backend.from_host(labels_host.data(), labels_dev.i32(), B * sizeof(int32_t));
      lr = schedule.at(step);
      EvalCounts c = train_step.run(x_dev, labels_dev, labels_host.data(), split, step, lr);
      epoch_seconds += seconds_since(t0);
      seen.loss_sum += c.loss_sum;
      seen.top1 += c.top1;
      seen.top5 += c.top5;
      seen.rows += c.rows;
      if (!std::isfinite(c.loss_sum))
        throw Error(cat("the loss became ", c.loss_sum, " at step ", step + 1,
                        "; lower the learning rate (solver.lr = ", cfg.solver.lr, ")"));
      progress.update(i + 1 - first, seen.loss_sum / seen.rows,
                      static_cast<double>(seen.top1) / seen.rows, seen.rows / epoch_seconds);
      if (opt.save_every > 0 && (step + 1) % opt.save_every == 0)
        save_step_checkpoint(summary.run_dir, store, CheckpointMeta{cfg, step + 1, epoch, false, class_names},
                             backend, comm, opt.keep_checkpoints);
    }
    const int64_t epoch_steps = end - first;
    train_seconds += epoch_seconds;
    summary.steps = step;
    MetricsRecord tr;
    tr.kind = "train";
    tr.epoch = epoch;
    tr.step = step;
    tr.loss = seen.loss_sum / seen.rows;
    tr.top1 = static_cast<double>(seen.top1) / seen.rows;
    tr.top5 = static_cast<double>(seen.top5) / seen.rows;
    tr.images_per_s = seen.rows / epoch_seconds;
    tr.lr = lr;
    tr.data_wait_s = train_loader.wait_seconds() - wait0;  // time load() blocked
    tr.skipped = train_loader.skipped();
    tr.comm_bytes = comm.total_elements_sent() * sizeof(float);
    for (int op = 0; op < static_cast<int>(CommOp::Count); ++op)
      if (comm.elements_sent(static_cast<CommOp>(op)))
        tr.comm_bytes_by_op[comm_op_name(static_cast<CommOp>(op))] =
            comm.elements_sent(static_cast<CommOp>(op)) * sizeof(float);
    summary.comm_bytes_per_step.clear();
    for (const auto& [op, bytes] : tr.comm_bytes_by_op)
      summary.comm_bytes_per_step[op] = bytes / std::max<int64_t>(1, epoch_steps);

    MetricsRecord ev = run_eval(epoch);
    ev.skipped = eval_loader.skipped();
    ev.images_per_s = tr.images_per_s;
    if (metrics) {
      metrics->write(tr);
      metrics->write(ev);
    }
    bool best = ev.top1 > summary.best_top1;
    summary.best_top1 = std::max(summary.best_top1, ev.top1);
    summary.final_top1 = ev.top1;
    summary.final_top5 = ev.top5;
    summary.final_loss = ev.loss;
    CheckpointMeta meta{cfg, step, epoch, best, class_names};
    save_run_checkpoints(summary.run_dir, store, meta, backend, comm);
    // Top-5 only means something with more than 5 classes.
    const std::string top5 = cfg.classes > 5 ? cat(" top-5 ", fixed(100 * ev.top5, 2), "%") : "";
    progress.finish_epoch(cat("epoch ", epoch, "/", cfg.solver.epochs, "  train loss ",
                              fixed(tr.loss, 4), " acc ", fixed(100 * tr.top1, 2), "%  |  test loss ",
                              fixed(ev.loss, 4), " top-1 ", fixed(100 * ev.top1, 2), "%", top5,
                              "  |  ", fixed(tr.images_per_s, 0), " img/s  ",
                              format_duration(epoch_seconds)));
  }
  summary.seconds = seconds_since(run_start);
  summary.train_images_per_s = train_seconds > 0 ? summary.steps * B / train_seconds : 0;
  return summary;
}

}  // namespace owt
