// Explains why an ontology is inconsistent, or lists unsatisfiable classes, with HermiT and the
// OWL API black-box explanation generator that ship in owlready2's HermiT.jar.
// Run (single-file source launch, Java 11+): java -cp HermiT.jar ExplainInconsistency.java merged.nt
// Prints "CONSISTENT", or "INCONSISTENT" followed by one justification axiom per line, or
// "UNSATISFIABLE <class>" blocks (QuickXplain over the logical axioms for an inconsistency); exit status 0 when consistent and every class is satisfiable.
import java.io.File;
import java.util.*;
import org.semanticweb.HermiT.Configuration;
import org.semanticweb.HermiT.Reasoner;
import org.semanticweb.owlapi.apibinding.OWLManager;
import org.semanticweb.owlapi.model.*;
import org.semanticweb.owlapi.reasoner.*;
import com.clarkparsia.owlapi.explanation.BlackBoxExplanation;

public class ExplainInconsistency {
  static OWLReasonerFactory factory() {
    return new Reasoner.ReasonerFactory() {
      @Override
      public OWLReasoner createReasoner(OWLOntology o, OWLReasonerConfiguration c) {
        Configuration conf = new Configuration();
        conf.throwInconsistentOntologyException = false;
        return new Reasoner(conf, o);
      }
      @Override
      public OWLReasoner createNonBufferingReasoner(OWLOntology o, OWLReasonerConfiguration c) {
        return createReasoner(o, c);
      }
    };
  }

  static OWLOntologyManager manager = OWLManager.createOWLOntologyManager();
  static OWLReasonerFactory factory = factory();
  static int checks = 0;

  static boolean consistent(Set<OWLAxiom> axioms) throws OWLOntologyCreationException {
    checks++;
    OWLOntology o = manager.createOntology(axioms);
    try {
      return factory.createReasoner(o).isConsistent();
    } finally {
      manager.removeOntology(o);
    }
  }

  // QuickXplain (Junker 2004): a minimal subset of c that, with background b, is inconsistent.
  static Set<OWLAxiom> quickXplain(Set<OWLAxiom> b, boolean delta, List<OWLAxiom> c) throws Exception {
    if (delta && !consistent(b)) return new HashSet<>();
    if (c.size() == 1) return new HashSet<>(c);
    List<OWLAxiom> c1 = c.subList(0, c.size() / 2), c2 = c.subList(c.size() / 2, c.size());
    Set<OWLAxiom> b1 = new HashSet<>(b); b1.addAll(c1);
    Set<OWLAxiom> x2 = quickXplain(b1, true, c2);
    Set<OWLAxiom> b2 = new HashSet<>(b); b2.addAll(x2);
    Set<OWLAxiom> x1 = quickXplain(b2, !x2.isEmpty(), c1);
    x1.addAll(x2);
    return x1;
  }

  public static void main(String[] a) throws Exception {
    OWLOntology o = manager.loadOntologyFromOntologyDocument(new File(a[0]));
    OWLReasoner r = factory.createReasoner(o);
    if (!r.isConsistent()) {
      System.out.println("INCONSISTENT");
      Set<OWLAxiom> background = new HashSet<>(o.getAxioms(AxiomType.DECLARATION));
      List<OWLAxiom> candidates = new ArrayList<>(o.getLogicalAxioms());
      for (OWLAxiom ax : quickXplain(background, false, candidates)) System.out.println(ax);
      System.err.println("consistency checks: " + checks);
      System.exit(1);
    }
    OWLDataFactory df = manager.getOWLDataFactory();
    BlackBoxExplanation bb = new BlackBoxExplanation(o, factory, r);
    boolean ok = true;
    for (OWLClass c : r.getUnsatisfiableClasses().getEntitiesMinusBottom()) {
      ok = false;
      System.out.println("UNSATISFIABLE " + c.getIRI());
      for (OWLAxiom ax : bb.getExplanation(c)) System.out.println(ax);
    }
    if (ok) System.out.println("CONSISTENT");
    System.exit(ok ? 0 : 1);
  }
}
