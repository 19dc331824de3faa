// dist::Communicator over MPI for `attend train` started by mpirun (Open MPI from Debian).
#pragma once

#include <memory>

#include "attend/dist.h"

namespace attend::tools {

// True when this process was started by mpirun (or another MPI launcher), whether or not the
// command was built with MPI.
bool LaunchedByMpi();

// Initialises MPI (finalised when the communicator is destroyed); an attend::Error when the
// command was built without MPI.
std::unique_ptr<dist::Communicator> MakeMpiCommunicator();

// Ends every rank of the job with `code` (MPI_Abort): a rank that fails must not leave the others
// waiting in a collective.
[[noreturn]] void AbortAllRanks(int code);

}  // namespace attend::tools
