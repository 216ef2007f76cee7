// Model: the one place where network, param store, hybrid step and optimizer are assembled,
// and the training step that runs the hybrid pass and the SGD updates.
#include "owt/train/model.h"

#include "owt/nn/init.h"

namespace owt {

Model::Model(const ModelConfig& cfg, Backend& backend, Communicator& comm, ParallelMode mode,
             ParamInit init)
    : backend_(backend), seed_(cfg.seed), net_(cfg.net, comm.rank(), comm.size(), mode),
      store_(net_.params(), net_.buffers(), backend), stepper_(net_, store_, backend, comm, cfg.net.parallel),
      sgd_(cfg.solver) {
  if (init == ParamInit::Seeded) {
    for (Param* p : store_.params()) initialize_param(*p, cfg.seed, backend);
    for (Param* b : store_.buffers()) initialize_param(*b, cfg.seed, backend);
  }
}

EvalCounts Model::train_step(const Tensor& x, const Tensor& labels, const int32_t* labels_host,
                             const BatchRows& rows, int64_t step, double lr) {
  EvalCounts c = stepper_.train(x, labels, labels_host, rows, step, seed_, [&] {
    sgd_.step(store_.model_stage(), lr, backend_);
    store_.zero_model_stage_grads(backend_);
  });
  sgd_.step(stepper_.updates_per_block() ? store_.summed() : store_.params(), lr, backend_);
  backend_.synchronize();
  return c;
}

}  // namespace owt
