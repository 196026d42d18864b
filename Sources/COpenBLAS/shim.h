#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
/* Debian installs cblas.h under /usr/include/x86_64-linux-gnu/ (an alternatives symlink). */
#include <cblas.h>
/* Declared by OpenBLAS but not in cblas.h on every build. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif
