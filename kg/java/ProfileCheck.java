// Adopted from ../shared/tools/ProfileCheck.java (the spinekg reference material): an OWL 2 profile check
// through the OWL API bundled in owlready2's HermiT.jar, resolving imports through catalog-v001.xml.
// OWL 2 profile check with the OWL API that ships inside owlready2's HermiT.jar (the API Protégé is built on).
// Build: javac -cp "$(python -c 'import owlready2,os;print(os.path.join(os.path.dirname(owlready2.__file__),"hermit","HermiT.jar"))')" ProfileCheck.java
// Run:   java -cp "<that HermiT.jar>:." ProfileCheck ontology/root.ttl DL [ontology/catalog-v001.xml]
// Prints IN PROFILE or the first violations; exit status 0 only when the ontology is in the profile.
// Imports are resolved offline through the catalog, as Protégé does.
import java.io.File;
import java.util.*;
import javax.xml.parsers.*;
import org.w3c.dom.*;
import org.semanticweb.owlapi.apibinding.OWLManager;
import org.semanticweb.owlapi.model.*;
import org.semanticweb.owlapi.profiles.*;
import org.semanticweb.owlapi.util.SimpleIRIMapper;

/** usage: java -cp HermiT.jar:. ProfileCheck ontology.owl [DL|EL|QL|RL] [catalog-v001.xml] */
public class ProfileCheck {
  public static void main(String[] a) throws Exception {
    OWLOntologyManager m = OWLManager.createOWLOntologyManager();
    File onto = new File(a[0]).getAbsoluteFile();
    File cat = a.length > 2 ? new File(a[2]).getAbsoluteFile() : new File(onto.getParentFile(), "catalog-v001.xml");
    if (cat.exists()) {   // Protege/ROBOT-style XML catalog: <uri name="IRI" uri="relative/file.owl"/>
      NodeList uris = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(cat).getElementsByTagName("uri");
      for (int i = 0; i < uris.getLength(); i++) {
        Element e = (Element) uris.item(i);
        m.addIRIMapper(new SimpleIRIMapper(IRI.create(e.getAttribute("name")),
            IRI.create(new File(cat.getParentFile(), e.getAttribute("uri")).toURI())));
      }
    }
    OWLOntology o = m.loadOntologyFromOntologyDocument(onto);
    String which = a.length > 1 ? a[1] : "DL";
    OWLProfile p = which.equals("EL") ? new OWL2ELProfile() : which.equals("QL") ? new OWL2QLProfile()
                 : which.equals("RL") ? new OWL2RLProfile() : new OWL2DLProfile();
    OWLProfileReport r = p.checkOntology(o);
    System.out.println(p.getName() + ": " + (r.isInProfile() ? "IN PROFILE" : "NOT in profile, " + r.getViolations().size() + " violation(s)")
        + " | axioms=" + o.getAxiomCount() + " imports=" + o.getImports().size());
    int n = 0; for (OWLProfileViolation v : r.getViolations()) { if (n++ < 5) System.out.println("  - " + v); }
    System.exit(r.isInProfile() ? 0 : 1);
  }
}
