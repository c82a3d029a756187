keep;
fileinta "x";