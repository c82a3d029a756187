#include <stdio.h>
int main(void) { puts("yubin"); return 0; }
