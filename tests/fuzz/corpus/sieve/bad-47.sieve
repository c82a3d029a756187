keep;
}