keep;
  @