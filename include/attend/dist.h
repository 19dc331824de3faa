// Data-parallel training's view of the processes it runs in: how many, which one this is, and
// the collectives the trainer needs. The library holds no MPI: the `attend` command implements
// this over MPI when it is started by mpirun (tools/attend/mpi_communicator.cc), and a caller
// can implement it over anything else. Every rank calls every collective in the same order.
#pragma once

#include <cstddef>
#include <string>

namespace attend::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Sums data[0..n) elementwise over the ranks, in place, the same result on every rank.
  virtual void AllReduceSum(float* data, size_t n) = 0;
  virtual void AllReduceSum(double* data, size_t n) = 0;
  // Rank `root`'s bytes replace every other rank's.
  virtual void Broadcast(std::string& bytes, int root) = 0;
};

}  // namespace attend::dist
