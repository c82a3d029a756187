keep;
if true {
  stop;
}
