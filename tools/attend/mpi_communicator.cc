// MPI for `attend train`: collectives on MPI_COMM_WORLD, in chunks that fit MPI's int counts.
#include "mpi_communicator.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "attend/error.h"

#ifdef ATTEND_HAVE_MPI
#include <mpi.h>
#endif

namespace attend::tools {

bool LaunchedByMpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

#ifdef ATTEND_HAVE_MPI
namespace {

class MpiCommunicator : public dist::Communicator {
 public:
  MpiCommunicator() {
    int provided = 0;
    // The trainer's threads (OpenMP) never call MPI; only the main thread does.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override { MPI_Finalize(); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void AllReduceSum(float* data, size_t n) override { Reduce(data, n, MPI_FLOAT); }
  void AllReduceSum(double* data, size_t n) override { Reduce(data, n, MPI_DOUBLE); }
  void Broadcast(std::string& bytes, int root) override {
    unsigned long long n = bytes.size();
    MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD);
    bytes.resize(n);
    for (size_t off = 0; off < n; off += INT_MAX) {
      const int count = static_cast<int>(std::min<size_t>(INT_MAX, n - off));
      MPI_Bcast(bytes.data() + off, count, MPI_CHAR, root, MPI_COMM_WORLD);
    }
  }

 private:
  template <typename T>
  void Reduce(T* data, size_t n, MPI_Datatype type) {
    for (size_t off = 0; off < n; off += INT_MAX) {
      const int count = static_cast<int>(std::min<size_t>(INT_MAX, n - off));
      MPI_Allreduce(MPI_IN_PLACE, data + off, count, type, MPI_SUM, MPI_COMM_WORLD);
    }
  }
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<dist::Communicator> MakeMpiCommunicator() {
  return std::make_unique<MpiCommunicator>();
}

void AbortAllRanks(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

#else

std::unique_ptr<dist::Communicator> MakeMpiCommunicator() {
  ATTEND_CHECK(false,
               "train: started by mpirun, but this attend was built without MPI (install "
               "libopenmpi-dev and rebuild; -DATTEND_WITH_MPI=ON)");
  return nullptr;
}

void AbortAllRanks(int code) { std::exit(code); }

#endif

}  // namespace attend::tools
