// owt's entry point: parses the command line (CLI11), sets up the job's communicator and runs
// the chosen subcommand; every error becomes one "owt: error: ..." line and a non-zero exit.
#include <cstdio>

#include "commands.h"
#include "owt/comm/make_communicator.h"
#include "owt/core/error.h"

int main(int argc, char** argv) {
  // stdout is line-buffered even into a pipe or a file (stderr is unbuffered), so a log that
  // captures both (`owt train ... > log 2>&1`) reads in the order the lines were printed.
  std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
  CLI::App app{"owt: trains image classifiers with hybrid data/model parallelism "
               "(Krizhevsky's one weird trick)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("owt ") + OWT_VERSION);
  owt::CommandRunner run;
  owt::add_train_command(app, run);
  owt::add_eval_command(app, run);
  owt::add_bench_command(app, run);
  owt::add_plan_command(app, run);
  owt::add_data_command(app, run);
  owt::add_predict_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  std::unique_ptr<owt::Communicator> comm;
  try {
    comm = owt::make_world_communicator();
    return run(*comm);
  } catch (const std::exception& e) {
    std::fflush(stdout);  // what was printed before the error comes before it
    if (comm && comm->size() > 1) comm->abort_all(e.what(), 1);
    std::fprintf(stderr, "owt: error: %s\n", e.what());
    return 1;
  }
}
