// Evaluation over a whole data set split (loss, top-1, top-5; the confusion matrix and the
// logits when asked), shared by `owt train` after every epoch and by `owt eval`; and the
// helpers that lay a global batch out over the workers.
#pragma once
#include <cstdint>
#include <vector>

#include "owt/data/loader.h"
#include "owt/parallel/hybrid_step.h"
#include "owt/train/model.h"
#include "owt/train/model_config.h"

namespace owt {

// Rows of each worker in a global batch of `rows` examples (as the loader splits them).
BatchRows split_rows(int64_t rows, int rank, int workers);

// Labels of the whole global batch `index` of `epoch` (every worker needs them all for the
// model-parallel loss). `global_batch` is K x b; `rows` may be less for a final partial batch.
void global_labels(BatchLoader& loader, const Dataset& data, int64_t epoch, int64_t index,
                   int64_t global_batch, int64_t rows, std::vector<int32_t>& out);

// Forward passes over every example of `data` in order (no augmentation, dropout off).
EvalCounts evaluate_dataset(HybridStep& stepper, const Dataset& data, BatchLoader& loader,
                            const Shape& input, int64_t batch, Backend& backend, Communicator& comm);

// The same over several views of every example (one loader per view, e.g. the 10 crops of
// data.augment.test_views): each example is scored by its logits averaged over the views.
EvalCounts evaluate_views(HybridStep& stepper, const Dataset& data,
                          const std::vector<BatchLoader*>& views, const Shape& input,
                          int64_t batch, Backend& backend, Communicator& comm);

// What an evaluation collects besides the loss and hits.
struct EvalOptions {
  bool confusion = false;  // EvalResult::confusion
  bool logits = false;     // EvalResult::logits
  bool progress = false;   // a progress bar on stderr while it runs (pass progress_is_live())
};

struct EvalResult {
  EvalCounts counts;
  int64_t classes = 0;
  // (classes, classes), row = true class, column = predicted class (the arg-max of the logits,
  // ties to the lower class, over every class shard); identical on every worker.
  std::vector<int64_t> confusion;
  // (examples, classes) in the data set's order, whole on rank 0 only (empty elsewhere): the
  // logits as the loss sees them (averaged over the views), gathered from every worker.
  std::vector<float> logits;
};

// evaluate_views with the model's own network, at the model file's input, classes and
// batch (per worker): the counts, and what `opt` asks for. Collective.
EvalResult evaluate_model(Model& model, const ModelConfig& cfg, const Dataset& data,
                          const std::vector<BatchLoader*>& views, Backend& backend,
                          Communicator& comm, const EvalOptions& opt = {});

}  // namespace owt
