// The whole public API of the attend engine.
#pragma once

#include "attend/autograd.h"
#include "attend/error.h"
#include "attend/ops.h"
#include "attend/tensor.h"
