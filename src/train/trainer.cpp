// The training loop of one worker: checks data against the model, builds the model, then runs
// epochs of steps with evaluation, metrics (JSON lines and TensorBoard events), progress and
// checkpoints.
#include "owt/train/trainer.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>

#include "owt/data/loader.h"
#include "owt/train/checkpoint.h"
#include "owt/train/data_split.h"
#include "owt/train/evaluate.h"
#include "owt/train/event_file.h"
#include "owt/train/memory_check.h"
#include "owt/train/metrics.h"
#include "owt/train/model.h"
#include "owt/train/optimizer.h"

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
  if (!cfg.data.path.empty()) doc["data"]["path"] = cfg.data.path;  // synthetic data has none
  doc["solver"]["batch"] = cfg.solver.batch;
  doc["solver"]["epochs"] = cfg.solver.epochs;
  doc["solver"]["lr"] = cfg.solver.lr;
  YAML::Emitter out;
  out << doc;
  return std::string(out.c_str()) + "\n";
}

// Text as a markdown code block (four spaces before every line), so TensorBoard's Text tab
// keeps its lines and indentation.
std::string markdown_code(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out += cat(out.empty() ? "" : "\n", "    ", text.substr(start, end - start));
    start = end + 1;
  }
  return out;
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

namespace {

// One worker's training run: the data, the model and the run directory, set up (and checked)
// before anything is written; then epochs of steps, each closed by an evaluation.
class Run {
 public:
  // In the order a user wants errors: the data against the model, then the model itself, then
  // the checkpoint to start from.
  Run(const ModelConfig& cfg, const TrainOptions& opt, Backend& backend, Communicator& comm)
      : cfg_(cfg), opt_(opt), backend_(backend), comm_(comm), lead_(comm.rank() == 0),
        b_(cfg.solver.batch), B_(b_ * comm.size()),
        train_set_(open_split(cfg, "train")), test_set_(open_split(cfg, "test")),
        train_tf_(cfg.data.train, train_set_->example_shape(), cfg.seed),
        eval_tf_(cfg.data.eval, test_set_->example_shape(), cfg.seed),
        progress_(lead_, opt.progress) {
    check_split(*train_set_, cfg, train_tf_, "train");
    check_split(*test_set_, cfg, eval_tf_, "test");
    train_loader_.emplace(*train_set_, train_tf_, loader_spec(true));
    eval_loader_.emplace(*test_set_, eval_tf_, loader_spec(false));
    steps_per_epoch_ = train_loader_->batches_per_epoch();
    if (steps_per_epoch_ == 0)
      throw Error(cat(data_name(cfg), ": the train set has ", train_set_->size(),
                      " examples, fewer than one global batch of ", B_, " (", comm.size(), " x ", b_, ")"));
    class_names_ = train_set_->class_names();
    // Before the model's memory is taken: refuses (on every rank) a run that would not fit.
    summary_.memory_estimate =
        check_memory(cfg, opt, backend, comm, train_set_->size(), test_set_->size()).peak();
    model_.emplace(cfg, backend, comm, opt.mode);
    step_ = restore_state(opt, model_->store(), backend, lead_);
    total_steps_ = cfg.solver.epochs * steps_per_epoch_;
    if (opt.max_steps > 0) total_steps_ = std::min(total_steps_, opt.max_steps);
    schedule_.emplace(cfg.solver, steps_per_epoch_, cfg.solver.epochs * steps_per_epoch_);
  }

  TrainSummary run() {
    open_run_directory();
    const auto start = Clock::now();
    summary_.steps = step_;
    for (int64_t epoch = step_ / steps_per_epoch_ + 1;
         epoch <= cfg_.solver.epochs && step_ < total_steps_; ++epoch)
      run_epoch(epoch);
    summary_.seconds = seconds_since(start);
    summary_.train_images_per_s = train_seconds_ > 0 ? summary_.steps * B_ / train_seconds_ : 0;
    return summary_;
  }

 private:
  LoaderSpec loader_spec(bool train) const {
    LoaderSpec s{b_, comm_.rank(), comm_.size(), train, train, train, cfg_.seed,
                 std::max(1, cfg_.data.threads)};
    s.prefetch = cfg_.data.prefetch;
    s.strict = cfg_.data.strict;
    // Batches decoded into the backend's host buffers (page-locked on CUDA) upload uncopied.
    s.host_buffers = [&backend = backend_](size_t bytes) { return backend.allocate_host(bytes); };
    return s;
  }

  // Everything is checked; only now does rank 0 create the run directory.
  void open_run_directory() {
    summary_.run_dir = !opt_.out_dir.empty() ? opt_.out_dir
                       : !opt_.resume.empty() && std::filesystem::is_directory(opt_.resume) ? opt_.resume
                       : default_run_dir(cfg_.name);
    if (!lead_) return;
    std::filesystem::create_directories(summary_.run_dir + "/checkpoints");
    std::ofstream(summary_.run_dir + "/config.yaml") << resolved_config_text(cfg_);
    metrics_.emplace(summary_.run_dir + "/metrics.jsonl");
    // A new event file per run, also when resuming (steps continue from the checkpoint's).
    events_.emplace(summary_.run_dir);
    events_->add_text("model_file", step_, markdown_code(cat("# ", cfg_.file, "\n", cfg_.text)));
    events_->add_text("config", step_, markdown_code(resolved_config_text(cfg_)));
    events_->add_text("command_line", step_,
                      markdown_code(cat(opt_.command_line.empty() ? "owt train" : opt_.command_line,
                                        "\n# ", comm_.size(), " worker", comm_.size() > 1 ? "s" : "")));
    events_->flush();
  }

  // The epoch's records as TensorBoard scalars, keyed by the global step; flushed so that a
  // TensorBoard watching the run directory shows the run as it goes.
  void write_events(const MetricsRecord& tr, const MetricsRecord& ev) {
    events_->add_scalar("train/loss", tr.step, tr.loss);
    events_->add_scalar("train/top1", tr.step, tr.top1);
    events_->add_scalar("train/lr", tr.step, tr.lr);
    events_->add_scalar("train/images_per_s", tr.step, tr.images_per_s);
    events_->add_scalar("train/data_wait_s", tr.step, tr.data_wait_s);
    events_->add_scalar("train/comm_bytes", tr.step, static_cast<double>(tr.comm_bytes));
    events_->add_scalar("eval/loss", ev.step, ev.loss);
    events_->add_scalar("eval/top1", ev.step, ev.top1);
    events_->add_scalar("eval/top5", ev.step, ev.top5);
    events_->flush();
  }

  // The steps of one epoch (from the resumed step on), then evaluation, records, checkpoints.
  void run_epoch(int64_t epoch) {
    const int64_t first = step_ - (epoch - 1) * steps_per_epoch_;
    const int64_t end = std::min(steps_per_epoch_, total_steps_ - (epoch - 1) * steps_per_epoch_);
    progress_.start_epoch(epoch, cfg_.solver.epochs, end - first);
    EvalCounts seen;
    double seconds = 0, lr = 0;
    const double wait0 = train_loader_->wait_seconds();
    comm_.reset_counters();
    for (int64_t i = first; i < end; ++i, ++step_) {
      const auto t0 = Clock::now();
      lr = schedule_->at(step_);
      const EvalCounts c = train_batch(epoch, i, lr);
      seconds += seconds_since(t0);
      seen += c;
      if (!std::isfinite(c.loss_sum))
        throw Error(cat("the loss became ", c.loss_sum, " at step ", step_ + 1,
                        "; lower the learning rate (solver.lr = ", cfg_.solver.lr, ")"));
      progress_.update(i + 1 - first, seen.loss_sum / seen.rows,
                       static_cast<double>(seen.top1) / seen.rows, seen.rows / seconds);
      if (opt_.save_every > 0 && (step_ + 1) % opt_.save_every == 0)
        save_step_checkpoint(summary_.run_dir, model_->store(), meta(step_ + 1, epoch, false),
                             backend_, comm_, opt_.keep_checkpoints);
    }
    train_seconds_ += seconds;
    summary_.steps = step_;
    MetricsRecord tr = train_record(epoch, seen, seconds, lr, end - first);
    tr.data_wait_s = train_loader_->wait_seconds() - wait0;  // time next() blocked
    MetricsRecord ev = eval_record(epoch);
    ev.images_per_s = tr.images_per_s;
    if (metrics_) {
      metrics_->write(tr);
      metrics_->write(ev);
      write_events(tr, ev);
    }
    const bool best = ev.top1 > summary_.best_top1;
    summary_.best_top1 = std::max(summary_.best_top1, ev.top1);
    summary_.final_top1 = ev.top1;
    summary_.final_top5 = ev.top5;
    summary_.final_loss = ev.loss;
    save_run_checkpoints(summary_.run_dir, model_->store(), meta(step_, epoch, best), backend_, comm_);
    progress_.finish_epoch(epoch_summary(epoch, tr, ev, seconds));
  }

  // Loads global batch `index` of `epoch` (this worker's rows, every row's label) and trains.
  EvalCounts train_batch(int64_t epoch, int64_t index, double lr) {
    const Shape& in = cfg_.net.input;
    if (!x_dev_.defined()) {
      x_dev_ = backend_.empty(in.with_batch(b_));
      labels_dev_ = backend_.empty(Shape{B_}, DType::I32);
    }
    const BatchRows split = split_rows(B_, comm_.rank(), comm_.size());
    // The images go up straight from the loader's buffer (no copy on this thread; on CUDA the
    // copy runs behind the call, and the loader waits for it before refilling the buffer).
    const LoadedBatch batch = train_loader_->next(epoch, index);
    global_labels(*train_loader_, *train_set_, epoch, index, B_, B_, labels_host_);
    backend_.upload(batch.images, 0, x_dev_.f32(), batch.rows * in.numel() * sizeof(float));
    backend_.from_host(labels_host_.data(), labels_dev_.i32(), B_ * sizeof(int32_t));
    return model_->train_step(x_dev_, labels_dev_, labels_host_.data(), split, step_, lr);
  }

  CheckpointMeta meta(int64_t step, int64_t epoch, bool best) const {
    CheckpointMeta m{cfg_, step, epoch, best, class_names_};
    m.progress = lead_ && progress_is_live(opt_.progress);
    return m;
  }

  MetricsRecord train_record(int64_t epoch, const EvalCounts& seen, double seconds, double lr,
                             int64_t steps) {
    MetricsRecord r;
    r.kind = "train";
    r.epoch = epoch;
    r.step = step_;
    r.loss = seen.loss_sum / seen.rows;
    r.top1 = static_cast<double>(seen.top1) / seen.rows;
    r.top5 = static_cast<double>(seen.top5) / seen.rows;
    r.images_per_s = seen.rows / seconds;
    r.lr = lr;
    r.skipped = train_loader_->skipped();
    r.comm_bytes = comm_.total_elements_sent() * sizeof(float);
    for (int op = 0; op < static_cast<int>(CommOp::Count); ++op)
      if (comm_.elements_sent(static_cast<CommOp>(op)))
        r.comm_bytes_by_op[comm_op_name(static_cast<CommOp>(op))] =
            comm_.elements_sent(static_cast<CommOp>(op)) * sizeof(float);
    summary_.comm_bytes_per_step.clear();
    for (const auto& [op, bytes] : r.comm_bytes_by_op)
      summary_.comm_bytes_per_step[op] = bytes / std::max<int64_t>(1, steps);
    return r;
  }

  MetricsRecord eval_record(int64_t epoch) {
    EvalOptions eo;
    eo.progress = lead_ && progress_is_live(opt_.progress);
    const EvalCounts total =
        evaluate_model(*model_, cfg_, *test_set_, {&*eval_loader_}, backend_, comm_, eo).counts;
    MetricsRecord r;
    r.kind = "eval";
    r.epoch = epoch;
    r.step = summary_.steps;
    r.loss = total.loss_sum / total.rows;
    r.top1 = static_cast<double>(total.top1) / total.rows;
    r.top5 = static_cast<double>(total.top5) / total.rows;
    r.skipped = eval_loader_->skipped();
    return r;
  }

  std::string epoch_summary(int64_t epoch, const MetricsRecord& tr, const MetricsRecord& ev,
                            double seconds) const {
    // Top-5 only means something with more than 5 classes.
    const std::string top5 = cfg_.net.classes > 5 ? cat(" top-5 ", fixed(100 * ev.top5, 2), "%") : "";
    return cat("epoch ", epoch, "/", cfg_.solver.epochs, "  train loss ", fixed(tr.loss, 4), " acc ",
               fixed(100 * tr.top1, 2), "%  |  test loss ", fixed(ev.loss, 4), " top-1 ",
               fixed(100 * ev.top1, 2), "%", top5, "  |  ", fixed(tr.images_per_s, 0), " img/s  ",
               format_duration(seconds));
  }

  const ModelConfig& cfg_;
  const TrainOptions& opt_;
  Backend& backend_;
  Communicator& comm_;
  const bool lead_;
  const int64_t b_, B_;  // rows per worker, global batch
  std::unique_ptr<Dataset> train_set_, test_set_;
  Transform train_tf_, eval_tf_;
  ProgressLine progress_;
  std::optional<BatchLoader> train_loader_, eval_loader_;
  int64_t steps_per_epoch_ = 0;
  std::optional<Model> model_;
  std::optional<LrSchedule> schedule_;
  std::vector<std::string> class_names_;
  std::optional<MetricsLog> metrics_;
  std::optional<EventFileWriter> events_;  // rank 0
  int64_t step_ = 0, total_steps_ = 0;
  double train_seconds_ = 0;
  TrainSummary summary_;
  std::vector<int32_t> labels_host_;  // (B)
  Tensor x_dev_, labels_dev_;
};

}  // namespace

TrainSummary train(const ModelConfig& cfg_in, const TrainOptions& opt, Backend& backend,
                   Communicator& comm) {
  ModelConfig cfg = cfg_in;
  apply_overrides(cfg, opt);
  return Run(cfg, opt, backend, comm).run();
}

}  // namespace owt
